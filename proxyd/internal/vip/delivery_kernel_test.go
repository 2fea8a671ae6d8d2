//go:build kernel

package vip

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	servicePort = 18080
	dialTimeout = 10 * time.Second // a passing run never waits for it
)

// expectDelivered checks that a connection from ns to vip reaches the
// node's listener, which saw it arrive at vip.
func expectDelivered(t *testing.T, from string, ns netns.NsHandle, vip netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dialTimeout)
	defer cancel()
	got, err := askLocalAddr(ctx, ns, vip, servicePort)
	if err != nil {
		t.Fatalf("connect from %s to %s: %v", from, vip, err)
	}
	if got != vip {
		t.Fatalf("connect from %s to %s arrived at %s", from, vip, got)
	}
}

// expectUnreachable checks that the node has no route to vip at all: the
// connection fails at once with ENETUNREACH.
func expectUnreachable(t *testing.T, ns netns.NsHandle, vip netip.Addr) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dialTimeout)
	defer cancel()
	if _, err := askLocalAddr(ctx, ns, vip, servicePort); !errors.Is(err, unix.ENETUNREACH) {
		t.Fatalf("connect from the node to %s without its route: %v, want ENETUNREACH", vip, err)
	}
}

// Packets to a VIP are delivered locally, both families, whether they come
// from the node itself (as a pod's or a host process's would, LOCAL_OUT)
// or from another host routing the VIPs to the node (LOCAL_IN): a
// listener on the wildcard address accepts them with the VIP as local
// address, as IPVS would see them.
func TestVIPsDeliveredLocally(t *testing.T) {
	p := newPair(t)
	p.routeVIPsViaNode(t)
	serveLocalAddr(t, p.node, servicePort)
	k := newKernel(t, p.node)
	vips := []netip.Addr{netip.MustParseAddr("198.19.0.10"), netip.MustParseAddr("2001:db8:19::10")}

	for _, v := range vips {
		expectUnreachable(t, p.node, v)
	}
	if err := k.AddAll(vips); err != nil {
		t.Fatal(err)
	}
	for _, v := range vips {
		expectDelivered(t, "the node", p.node, v)
		expectDelivered(t, "the peer", p.peer, v)
	}
	if err := k.DeleteAll(vips); err != nil {
		t.Fatal(err)
	}
	for _, v := range vips {
		expectUnreachable(t, p.node, v)
	}
}

// A VIP that is also an address of the node (an ExternalIP naming the
// node, say) gets proxyd's route beside the address's; each owner's
// changes leave the other's route, and delivery, alone.
func TestVIPThatIsANodeAddress(t *testing.T) {
	p := newPair(t)
	serveLocalAddr(t, p.node, servicePort)
	eth0, err := p.nodeH.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	// Secondary addresses: deleting them later keeps the subnet's route.
	vips := []netip.Addr{netip.MustParseAddr("198.18.0.11"), netip.MustParseAddr("2001:db8:18::11")}
	addrs := make([]*netlink.Addr, len(vips))
	for i, v := range vips {
		bits := map[bool]int{true: 24, false: 64}[v.Is4()]
		addrs[i] = &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(v, bits)), Flags: unix.IFA_F_NODAD}
		if err := p.nodeH.AddrAdd(eth0, addrs[i]); err != nil {
			t.Fatal(err)
		}
	}
	waitAddressRoutes(t, p.nodeH, vips...)
	k := newKernel(t, p.node)
	if err := k.AddAll(vips); err != nil {
		t.Fatalf("AddAll of node addresses: %v", err)
	}
	routes := localRoutes(t, p.nodeH)
	for _, dst := range []string{"198.18.0.11/32", "2001:db8:18::11/128"} {
		if routes[dst+" metric 0"] != unix.RTPROT_KERNEL || routes[dst+" metric 79"] != RouteProtocol {
			t.Fatalf("want the address's route and proxyd's for %s; local routes: %v", dst, routes)
		}
	}
	// proxyd's delete leaves the address's route.
	if err := k.DeleteAll(vips); err != nil {
		t.Fatal(err)
	}
	for _, v := range vips {
		expectDelivered(t, "the peer", p.peer, v)
	}
	// The address's removal leaves proxyd's route, which still delivers.
	if err := k.AddAll(vips); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if err := p.nodeH.AddrDel(eth0, a); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustList(t, k); len(got) != 2 {
		t.Fatalf("List = %v after the addresses went, want both VIPs", got)
	}
	for _, v := range vips {
		expectDelivered(t, "the node", p.node, v)
	}
	// The peer still reaches the IPv4 one on the link (its neighbour entry
	// is there, and ARP would be answered: TestNeighbourDiscoveryOfVIPs).
	expectDelivered(t, "the peer", p.peer, vips[0])
}
