//go:build kernel

package egress

// Real traffic through the table. Address plan (namespaces of the test's
// own, nothing leaves them):
//
//	world  198.18.0.1/24 ── 198.18.0.10/24  node  198.18.128.1/24 ── 198.18.128.2/24  pod
//	                                              198.18.129.1/24 ── 198.18.129.2/24  pod2
//
// The cluster is 198.18.128.0/17; this node's pod CIDR 198.18.128.0/24
// (pod2 stands for a pod elsewhere in the cluster, routed via the node).
// The world has a route back to the cluster through the node, so that a
// connection works with or without masquerade and the source address the
// server sees tells which it was.

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestKernelTrafficMasquerade(t *testing.T) {
	world, node, pod, pod2 := netnstest.New(t), netnstest.New(t), netnstest.New(t), netnstest.New(t)
	netnstest.Veth(t, netnstest.End{NS: node, Name: "uplink", Addrs: []string{"198.18.0.10/24"}},
		netnstest.End{NS: world, Name: "eth0", Addrs: []string{"198.18.0.1/24"}})
	netnstest.Veth(t, netnstest.End{NS: node, Name: "pod", Addrs: []string{"198.18.128.1/24"}},
		netnstest.End{NS: pod, Name: "eth0", Addrs: []string{"198.18.128.2/24"}})
	netnstest.Veth(t, netnstest.End{NS: node, Name: "pod2", Addrs: []string{"198.18.129.1/24"}},
		netnstest.End{NS: pod2, Name: "eth0", Addrs: []string{"198.18.129.2/24"}})
	addRoute(t, pod, "0.0.0.0/0", "198.18.128.1")
	addRoute(t, pod2, "0.0.0.0/0", "198.18.129.1")
	addRoute(t, world, "198.18.128.0/17", "198.18.0.10")
	if err := netnstest.InNetns(node, func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	worldSrv := netnstest.ServeWho(t, world, "198.18.0.1:0")
	podSrv := netnstest.ServeWho(t, pod2, "198.18.129.2:0")
	podAddr := netip.MustParseAddr("198.18.128.2")
	nodeAddr := netip.MustParseAddr("198.18.0.10")

	// Without the table: no masquerade anywhere.
	expectSource(t, pod, worldSrv, podAddr, "pod to the world, no table")

	tb := newKernelTable(t, node)
	mustApply(t, tb, Desired{PodCIDRs: pfx("198.18.128.0/24"), NoMasquerade: pfx("198.18.128.0/17")})
	expectSource(t, pod, worldSrv, nodeAddr, "pod to the world")
	expectSource(t, pod, podSrv, podAddr, "pod to a pod of the cluster")
	// Only this node's pods are masqueraded: pod2's connection, routed
	// through the node, keeps its address.
	expectSource(t, pod2, worldSrv, netip.MustParseAddr("198.18.129.2"), "another node's pod (routed through) to the world")

	// The pod CIDR changes: the pod is no longer this node's.
	mustApply(t, tb, Desired{PodCIDRs: pfx("198.18.130.0/24"), NoMasquerade: pfx("198.18.128.0/17")})
	expectSource(t, pod, worldSrv, podAddr, "pod outside the node's pod CIDR to the world")

	// Back, then Delete (routerd cleanup) removes the masquerade.
	mustApply(t, tb, Desired{PodCIDRs: pfx("198.18.128.0/24"), NoMasquerade: pfx("198.18.128.0/17")})
	expectSource(t, pod, worldSrv, nodeAddr, "pod to the world, again")
	if err := tb.Delete(); err != nil {
		t.Fatal(err)
	}
	expectSource(t, pod, worldSrv, podAddr, "pod to the world after Delete")
}

func addRoute(t *testing.T, ns netns.NsHandle, dst, via string) {
	t.Helper()
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := netnstest.Handle(t, ns).RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(via)}); err != nil {
		t.Fatalf("route %s via %s: %v", dst, via, err)
	}
}

// expectSource connects from ns to srv and checks the server saw want as
// the client. A table change takes effect when Apply returns, so the first
// connection that gets through must show it; only failures to connect are
// retried, until a deadline.
func expectSource(t *testing.T, ns netns.NsHandle, srv netip.AddrPort, want netip.Addr, what string) {
	t.Helper()
	netnstest.WaitFor(t, 10*time.Second, 20*time.Millisecond, what, func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		got, err := netnstest.Who(ctx, ns, netip.Addr{}, srv)
		if err != nil {
			return false, err.Error()
		}
		if got != want {
			t.Fatalf("%s: the server saw %s, want %s", what, got, want)
		}
		return true, ""
	})
}
