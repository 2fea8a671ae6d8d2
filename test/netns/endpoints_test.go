//go:build kernel

package netns

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// Nodes serve like hostNetwork pods, and the world namespace is a client
// from outside the cluster: both see unNATed addresses when routed.
func TestNodeAndWorldEndpoints(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{Nodes: 2})
	must(t, topo.RouteAllPodCIDRs())
	n0, n1, w := topo.Node(0), topo.Node(1), topo.World()
	a := topo.AddPod(t, n0, "a")
	must(t, a.ServeTCP(80))
	must(t, n1.ServeUDP(9000))
	must(t, n1.ServeTCP(9000))

	// Pod to another node's host network.
	ans, err := a.DialUDP(testCtx(t, 10*time.Second), netip.AddrPortFrom(n1.IP, 9000))
	must(t, err)
	checkAnswer(t, ans, "udp", "node1", a.IP)
	if ans.Destination != netip.AddrPortFrom(n1.IP, 9000) {
		t.Errorf("destination %s, want %s:9000", ans.Destination, n1.IP)
	}

	// The world reaches node addresses on the underlay directly, and pods
	// once it routes their CIDRs to the nodes.
	ans, err = w.DialTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(n1.IP, 9000))
	must(t, err)
	checkAnswer(t, ans, "tcp", "node1", w.IP)
	must(t, w.AddRoute(n0.PodCIDR, n0.IP))
	ans, err = w.DialTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(a.IP, 80))
	must(t, err)
	checkAnswer(t, ans, "tcp", "a", w.IP)

	// Nothing listening: refused, not a timeout.
	if _, err := a.DialTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(n1.IP, 9999)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("tcp to a closed port: %v, want connection refused", err)
	}
	if _, err := a.DialUDP(testCtx(t, 10*time.Second), netip.AddrPortFrom(n1.IP, 9999)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("udp to a closed port: %v, want connection refused", err)
	}
}

// SCTP echo between pods on two nodes, association by association. Where
// the kernel has no SCTP (this CI host), the test skips: it runs in the VM.
func TestSCTPEcho(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{Nodes: 2})
	must(t, topo.RouteAllPodCIDRs())
	a := topo.AddPod(t, topo.Node(0), "a")
	b := topo.AddPod(t, topo.Node(1), "b")
	err := b.ProbeSCTP()
	skipWithoutSCTP(t, err)
	must(t, err)
	must(t, b.ServeSCTP(7777))
	s, err := a.OpenSCTP(testCtx(t, 10*time.Second), netip.AddrPortFrom(b.IP, 7777))
	must(t, err)
	defer func() { _ = s.Close() }()
	for range 3 {
		ans, err := s.Ask(testCtx(t, 10*time.Second))
		must(t, err)
		checkAnswer(t, ans, "sctp", "b", a.IP)
		if ans.Destination != netip.AddrPortFrom(b.IP, 7777) {
			t.Fatalf("destination %s, want %s:7777", ans.Destination, b.IP)
		}
	}
	// Nothing listening: the peer aborts the association set-up.
	if _, err := a.DialSCTP(testCtx(t, 10*time.Second), netip.AddrPortFrom(b.IP, 7778)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("sctp to a closed port: %v, want connection refused", err)
	}
}
