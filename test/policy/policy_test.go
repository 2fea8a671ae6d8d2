//go:build kernel

package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestPolicy builds the fixture once and runs every case against it, one
// after the other (see the package comment). Only no-policy runs until
// firewalld enforces policies (the gate, firewalld_test.go).
func TestPolicy(t *testing.T) {
	f := newFixture(t)
	for _, c := range allCases() {
		t.Run(c.name, func(t *testing.T) { f.run(t, c) })
	}
	t.Run("new-pod-fail-closed", f.testNewPodFailClosed)
	t.Run("enforced-by-each-node", f.testEnforcedByEachNode)
	t.Run("service-traffic-policed", f.testServiceTrafficPoliced)
	t.Run("covered-means-enforced", f.testCoveredMeansEnforced)
	t.Run("restart-upgrade-fail-closed", f.testRestartFailClosed)
}

// run runs a case's steps in order, then restores the cluster.
func (f *fixture) run(t *testing.T, c policyCase) {
	if !c.ungated {
		f.requireEnforcement(t)
	}
	if c.needsSCTP && f.noSCTP != nil {
		t.Skipf("SCTP: %v; this case is about SCTP alone (its SCTP cells are skipped in every other case too)", f.noSCTP)
	}
	f.timeCase(t, c.name)
	t.Log(c.doc)
	t.Cleanup(func() { f.reset(t) })
	for _, s := range c.steps(f) {
		// A matrix that misreads the API would fail here as a firewalld bug.
		if err := checkStep(f.model, f, s); err != nil {
			t.Fatalf("step %s: %v", s.name, err)
		}
		f.step(t, s, f.expected(s))
	}
}

// timeCase records how long case name takes, its reset included: call it
// before registering the reset.
func (f *fixture) timeCase(t *testing.T, name string) {
	begin := time.Now()
	t.Cleanup(func() { f.timings.add("case "+name+" (and its reset)", time.Since(begin)) })
}

// step applies s and waits for want, then checks that firewalld's trace
// says of every cell what the traffic did (once firewalld enforces).
func (f *fixture) step(t *testing.T, s step, want *Matrix) {
	t.Helper()
	f.applyAndConverge(t, s, want, true)
	if f.gate == "" {
		f.checkTraceAgrees(t, "step "+s.name, want)
	}
}

// applyAndConverge applies s and waits for want, logging want's table when
// showTable.
func (f *fixture) applyAndConverge(t *testing.T, s step, want *Matrix, showTable bool) {
	t.Helper()
	marks := f.syncMarks(t)
	if f.apply(t, s) == 0 {
		marks = nil // nothing changed: nothing for firewalld to settle
	}
	f.converge(t, "step "+s.name, want, marks, showTable)
}

// expected is a step's matrix, with the SCTP cells skipped on a kernel
// without SCTP.
func (f *fixture) expected(s step) *Matrix {
	m := expectedMatrix(f.model, f.ports, s)
	f.skipUnsupported(m)
	return m
}

func (f *fixture) skipUnsupported(m *Matrix) {
	if f.noSCTP != nil {
		m.SkipPorts("no SCTP in this kernel", SCTP(80), SCTP(81))
	}
}

// apply makes the cluster hold exactly s's policies and labels, changing
// only what differs from what it holds, and returns how many objects it
// wrote.
func (f *fixture) apply(t *testing.T, s step) int {
	t.Helper()
	ctx, cancel := stepContext(t, apiTimeout)
	defer cancel()
	writes := 0
	want := map[string]*networkingv1.NetworkPolicy{}
	for _, p := range s.policies {
		want[p.Namespace+"/"+p.Name] = p
	}
	for _, key := range slices.Sorted(maps.Keys(f.policies)) {
		if _, ok := want[key]; ok {
			continue
		}
		p := f.policies[key].local
		if err := f.admin.NetworkingV1().NetworkPolicies(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete policy %s: %v", key, err)
		}
		delete(f.policies, key)
		writes++
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		p := want[key]
		client := f.admin.NetworkingV1().NetworkPolicies(p.Namespace)
		var (
			written *networkingv1.NetworkPolicy
			err     error
		)
		// Compared with what the test wrote, not with what the apiserver
		// stored (which has defaults filled in).
		switch cur, ok := f.policies[key]; {
		case !ok:
			written, err = client.Create(ctx, p.DeepCopy(), metav1.CreateOptions{})
		case !equality.Semantic.DeepEqual(cur.local.Spec, p.Spec):
			upd := cur.stored.DeepCopy()
			upd.Spec = *p.Spec.DeepCopy()
			written, err = client.Update(ctx, upd, metav1.UpdateOptions{})
		default:
			continue
		}
		if err != nil {
			t.Fatalf("write policy %s: %v", key, err)
		}
		// The reference evaluator assumes the apiserver's defaulting of
		// policyTypes: check it on what was stored.
		if got, ref := written.Spec.PolicyTypes, effectivePolicyTypes(p); !slices.Equal(got, ref) {
			t.Errorf("policy %s: the apiserver stored policyTypes %v, the reference assumes %v", key, got, ref)
		}
		f.policies[key] = appliedPolicy{local: p.DeepCopy(), stored: written}
		writes++
	}
	for _, p := range f.model.Pods() {
		if l := podLabelsAt(s, p); !maps.Equal(l, f.podLabels[p]) {
			if err := f.setPodLabels(ctx, p, l); err != nil {
				t.Fatalf("pod %s: labels: %v", p, err)
			}
			f.podLabels[p] = l
			writes++
		}
	}
	for _, ns := range f.model.Namespaces {
		if l := namespaceLabelsAt(s, ns); !maps.Equal(l, f.nsLabels[ns]) {
			if err := f.setNamespaceLabels(ctx, ns, l); err != nil {
				t.Fatal(err)
			}
			f.nsLabels[ns] = l
			writes++
		}
	}
	return writes
}

// appliedPolicy is a policy the cluster holds: as the test wrote it, and
// as the apiserver stored it (defaults filled in, with its resourceVersion).
type appliedPolicy struct {
	local, stored *networkingv1.NetworkPolicy
}

// reset restores the state every case starts from, whatever the case did:
// no policy, default labels, everything reachable.
func (f *fixture) reset(t *testing.T) {
	t.Helper()
	f.applyAndConverge(t, step{name: "reset (no policy, default labels)"}, f.expected(step{}), false)
}

// timings collects how long the phases of the suite take, for the log.
type timings struct {
	mu    sync.Mutex
	lines []string
}

func (ts *timings) add(what string, d time.Duration) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.lines = append(ts.lines, fmt.Sprintf("  %-60s %v", what, d.Round(time.Millisecond)))
}

func (ts *timings) String() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return strings.Join(ts.lines, "\n")
}
