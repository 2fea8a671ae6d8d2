//go:build kernel

package policy

import (
	"testing"

	"github.com/nodenet/nodenet/test/daemonproc"
)

// testCoveredMeansEnforced: once every firewalld reports that its last
// applied sync covered a policy's resourceVersion (status sync.applied),
// the policy is in force. The matrix is probed once, right then, not
// polled: a status that claimed a version before its sync had programmed
// it would show here as cells still reachable.
func (f *fixture) testCoveredMeansEnforced(t *testing.T) {
	f.requireEnforcement(t)
	f.timeCase(t, "covered-means-enforced")
	t.Log("x denies all ingress; each firewalld covers the policy's resourceVersion; one round of probes then sees it enforced on both nodes")
	t.Cleanup(func() { f.reset(t) })

	pol := netpol("x", "deny-ingress", everything(), policyTypes(ingressType))
	s := step{name: "deny-ingress-x", policies: policies(pol)}
	want := f.matrixOf(func(e *Expectation) { e.DenyIngressTo(PodsIn("x")) })
	if f.apply(t, s) == 0 {
		t.Fatal("the step wrote nothing: the cluster did not start from no policy")
	}
	rv := f.policies[pol.Namespace+"/"+pol.Name].stored.ResourceVersion

	ctx, cancel := stepContext(t, convergeTimeout+2*probeTimeout)
	defer cancel()
	for _, fw := range f.fw {
		r, err := fw.WaitStatus(ctx, "covers networkpolicies@"+rv, daemonproc.Covers("networkpolicies", rv))
		if err != nil {
			t.Fatalf("%v\n%s", err, f.describeFirewalld(ctx))
		}
		t.Logf("firewalld on %s: last applied sync covered %v", fw.Node().Name, r.Status.Sync.Applied)
	}
	if err := f.flushConntrack(); err != nil {
		t.Fatal(err)
	}
	got := f.observe(ctx, want)
	if diff := Diff(want, got); len(diff) > 0 {
		t.Fatalf("covered at %s, yet %d cells differ:\n%s%s%s", rv, len(diff), Format(want, got), FormatMismatches(diff, maxMismatchesShown), f.describeFirewalld(ctx))
	}
	t.Logf("covered at %s: enforced at the first probe (%d cells blocked)", rv, got.Count(Blocked))
}
