//go:build kernel

package netns

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A routed node (Options.RoutedNodes) sits on its own subnet behind the
// world: nodes reach each other's underlay address through the world,
// which forwards without NAT (each side sees the other's own address),
// and static pod routes between the two subnets are refused (they need a
// tunnel: routerd's IPIP).
func TestRoutedNodeReachedThroughTheWorld(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{Nodes: 3, RoutedNodes: 1})
	n0, n1, r := topo.Node(0), topo.Node(1), topo.Node(2)
	if n0.Routed || n1.Routed || !r.Routed {
		t.Fatalf("routed: %v %v %v, want only the last node", n0.Routed, n1.Routed, r.Routed)
	}
	if !UnderlayCIDR().Contains(n1.IP) || !RoutedCIDR().Contains(r.IP) || topo.World().RoutedIP != RoutedWorldIP() {
		t.Fatalf("addresses: %s, %s, world %s", n1.IP, r.IP, topo.World().RoutedIP)
	}
	must(t, n0.ServeTCP(8080))
	must(t, r.ServeTCP(8080))

	ans, err := r.DialTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(n0.IP, 8080))
	must(t, err)
	checkAnswer(t, ans, "tcp", "node0", r.IP)
	ans, err = n1.DialTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(r.IP, 8080))
	must(t, err)
	checkAnswer(t, ans, "tcp", "node2", n1.IP)

	if err := topo.RouteAllPodCIDRs(); err == nil || !strings.Contains(err.Error(), "different subnets") {
		t.Errorf("RouteAllPodCIDRs across subnets: %v, want refused", err)
	}
}
