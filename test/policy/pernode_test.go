//go:build kernel

package policy

import (
	"testing"

	"github.com/nodenet/nodenet/test/daemonproc"
)

// testEnforcedByEachNode: each node's firewalld polices its own pods, egress
// at the source and ingress at the destination, and nothing else does. With
// one firewalld stopped and its table removed (`firewalld cleanup`), the
// pods of that node go unpoliced while the other node still stops what its
// own pods may not send or receive, across nodes too.
func (f *fixture) testEnforcedByEachNode(t *testing.T) {
	f.requireEnforcement(t)
	f.timeCase(t, "enforced-by-each-node")
	t.Log("egress is stopped by the source's node (with node1's firewalld gone, x/a and x/b still cannot send, " +
		"x/c can), ingress by the destination's node (with node0's firewalld gone, y/c still receives nothing, " +
		"y/a and y/b do)")
	t.Cleanup(func() { f.reset(t) })

	denyEgressX := policies(netpol("x", "deny-egress", everything(), policyTypes(egressType)))
	denyIngressY := policies(netpol("y", "deny-ingress", everything(), policyTypes(ingressType)))
	xOnNode0 := Pods(Pod("x", "a"), Pod("x", "b"))
	yOnNode1 := Pods(Pod("y", "c"))

	f.withoutFirewalld(t, 1, func() {
		s := step{name: "deny-egress-x-node1-down", policies: denyEgressX}
		f.step(t, s, f.matrixOf(func(e *Expectation) { e.DenyEgressFrom(xOnNode0) }))
	})
	f.step(t, step{name: "deny-egress-x", policies: denyEgressX}, f.matrixOf(func(e *Expectation) { e.DenyEgressFrom(PodsIn("x")) }))

	f.withoutFirewalld(t, 0, func() {
		s := step{name: "deny-ingress-y-node0-down", policies: denyIngressY}
		f.step(t, s, f.matrixOf(func(e *Expectation) { e.DenyIngressTo(yOnNode1) }))
	})
	f.step(t, step{name: "deny-ingress-y", policies: denyIngressY}, f.matrixOf(func(e *Expectation) { e.DenyIngressTo(PodsIn("y")) }))
}

// matrixOf is the matrix a hand-written expectation gives.
func (f *fixture) matrixOf(expect func(*Expectation)) *Matrix {
	e := NewExpectation(f.model, f.ports)
	expect(e)
	m := e.Matrix()
	f.skipUnsupported(m)
	return m
}

// withoutFirewalld runs fn with node i's firewalld stopped (SIGTERM) and its
// table removed, then starts it again and waits until it has synced, also
// when fn fails the test.
func (f *fixture) withoutFirewalld(t *testing.T, i int, fn func()) {
	t.Helper()
	fw := f.fw[i]
	ctx, cancel := stepContext(t, firewalldStartTimeout)
	defer cancel()
	if err := fw.Stop(); err != nil {
		t.Fatalf("%v\n%s", err, fw.Logs(daemonproc.LogDumpLimit))
	}
	defer func() {
		ctx, cancel := stepContext(t, firewalldStartTimeout)
		defer cancel()
		if err := fw.Start(); err != nil {
			t.Error(err)
			return
		}
		if _, err := fw.WaitReady(ctx); err != nil {
			t.Errorf("%v\n%s", err, fw.Logs(daemonproc.LogDumpLimit))
		}
	}()
	if err := fw.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	fn()
}
