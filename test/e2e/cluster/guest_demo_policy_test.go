//go:build e2eguest

package cluster

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/nodenet/nodenet/test/netns"
)

// showPolicies is the lab's NetworkPolicy part: both clients get in; a
// default-deny ingress policy shuts client-a out; a policy allowing
// role=client lets client-a back in while client-b, unlabelled, stays out.
func (d *demo) showPolicies(t *testing.T) {
	ca, cb := d.pods["client-a"], d.pods["client-b"]
	var targets []netip.AddrPort
	for _, b := range d.backends {
		targets = append(targets, podAddr(b))
	}
	// Three connections through the ClusterIP: round robin sends them to
	// the three web pods.
	targets = append(targets, vip(d.svc), vip(d.svc), vip(d.svc))

	d.title("NetworkPolicy: before any policy",
		"Without a policy every pod takes every connection: both clients reach the three web pods.")
	for _, cl := range []*netns.Pod{ca, cb} {
		for _, b := range d.backends {
			d.expectAnswer(t, cl, b)
		}
	}

	d.title("NetworkPolicy: default deny",
		"demo/default-deny selects every pod of the namespace and allows no ingress. firewalld on every",
		"node drops what the policies forbid (no reject): a blocked connection gets no answer at all.",
		"  podSelector: {}   policyTypes: [Ingress]   ingress: none")
	d.c.createPolicy(t, demoNamespace, "default-deny", nil, nil)
	expectBlocked(t, ca.NetNS, targets...)
	if t.Failed() {
		t.FailNow()
	}
	d.printBlocked(ca, targets)

	d.title("NetworkPolicy: allow role=client",
		"demo/allow-clients lets pods labelled role=client into the web pods. client-a has the label and",
		"gets in again; client-b has none and stays blocked, at the pods and through the ClusterIP.",
		"  podSelector: {app: web}   ingress: from podSelector {role: client}")
	d.c.createPolicy(t, demoNamespace, "allow-clients", map[string]string{"app": "web"}, map[string]string{"role": "client"})
	for _, b := range d.backends {
		d.expectAnswer(t, ca, b)
	}
	seen := map[string]bool{}
	for range d.backends {
		a := dial(t, ca.NetNS, vip(d.svc))
		seen[a.Name] = true
		fmt.Fprintf(d.w, "%s → %s: answered by %s\n", ca.Name, vip(d.svc), a.Name)
	}
	if len(seen) != len(d.backends) {
		t.Fatalf("%s through %s: answered by %v, want every web pod", ca.Name, vip(d.svc), seen)
	}
	expectBlocked(t, cb.NetNS, targets...)
	if t.Failed() {
		t.FailNow()
	}
	d.printBlocked(cb, targets)
}

// expectAnswer waits until cl's connection to web pod b is answered by b,
// and prints it.
func (d *demo) expectAnswer(t *testing.T, cl, b *netns.Pod) {
	t.Helper()
	a, err := reach(t.Context(), cl.NetNS, podAddr(b))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != b.Name {
		t.Fatalf("%s to %s: answered by %s", cl.Name, b.Name, a.Name)
	}
	fmt.Fprintf(d.w, "%s → %s (%s): answered by %s\n", cl.Name, podAddr(b), b.Name, a.Name)
}

// printBlocked prints the connections expectBlocked found dropped.
func (d *demo) printBlocked(cl *netns.Pod, targets []netip.AddrPort) {
	for _, addr := range targets {
		what := "the ClusterIP"
		for _, b := range d.backends {
			if podAddr(b) == addr {
				what = b.Name
			}
		}
		fmt.Fprintf(d.w, "%s → %s (%s): blocked, no answer within %v\n", cl.Name, addr, what, blockedTimeout)
	}
}
