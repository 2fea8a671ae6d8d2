//go:build kernel

package vip

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Does the node claim its VIPs on a link? The peer is given on-link routes
// to the VIP ranges, so it asks for each VIP itself (ARP, IPv6 neighbour
// solicitation) instead of for the node's address, as a host on a node's
// LAN would for an ExternalIP or LoadBalancer IP in the LAN's subnet.
func TestNeighbourDiscoveryOfVIPs(t *testing.T) {
	p := newPair(t)
	for _, dst := range []string{"198.19.0.0/16", "2001:db8:19::/64"} {
		link, err := p.peerH.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		r := &netlink.Route{Dst: ipNet(netip.MustParsePrefix(dst)), LinkIndex: link.Attrs().Index, Scope: unix.RT_SCOPE_LINK}
		if err := p.peerH.RouteAdd(r); err != nil {
			t.Fatalf("peer on-link route %s: %v", dst, err)
		}
	}
	// One probe, 100 ms apart: an unanswered solicitation fails fast.
	for _, fam := range []string{"ipv4", "ipv6"} {
		setSysctl(t, p.peer, "net/"+fam+"/neigh/eth0/mcast_solicit", "1")
		setSysctl(t, p.peer, "net/"+fam+"/neigh/eth0/retrans_time_ms", "100")
	}
	// A new namespace inherits IPv4 conf/all from the host's: start from
	// the kernel's default, 0.
	setSysctl(t, p.node, "net/ipv4/conf/all/arp_ignore", "0")
	setSysctl(t, p.node, "net/ipv4/conf/eth0/arp_ignore", "0")

	k := newKernel(t, p.node)
	vips := []netip.Addr{
		netip.MustParseAddr("198.19.0.10"), netip.MustParseAddr("198.19.0.11"), netip.MustParseAddr("2001:db8:19::10"),
	}
	if err := k.AddAll(vips); err != nil {
		t.Fatal(err)
	}

	// arp_ignore=0: the node answers ARP for any address its tables call
	// local, on any interface: every VIP.
	if got := resolve(t, p, vips[0]); !bytes.Equal(got, p.nodeMAC) {
		t.Fatalf("arp_ignore=0: ARP for VIP %s answered by %v, want the node (%v)", vips[0], got, p.nodeMAC)
	}
	// arp_ignore=1: only for addresses of the interface the request came
	// in on. A VIP is no address: unanswered. The node's address still is.
	setSysctl(t, p.node, "net/ipv4/conf/all/arp_ignore", "1")
	if got := resolve(t, p, vips[1]); got != nil {
		t.Fatalf("arp_ignore=1: ARP for VIP %s answered by %v, want no answer", vips[1], got)
	}
	if got := resolve(t, p, netip.MustParseAddr("198.18.0.10")); !bytes.Equal(got, p.nodeMAC) {
		t.Fatalf("arp_ignore=1: ARP for the node's address answered by %v, want the node", got)
	}
	// IPv6: a solicitation is answered only for an address of the
	// receiving interface (or a proxy entry): never for a VIP.
	if got := resolve(t, p, vips[2]); got != nil {
		t.Fatalf("neighbour solicitation for VIP %s answered by %v, want no answer", vips[2], got)
	}
}

// The other half of ARP: when the node itself asks (it needs a client's
// MAC to answer it), net.ipv4.conf.*.arp_announce=0 (the default) lets it
// name the packet's source as sender, and that is the VIP: every host on
// the link that hears the request learns "VIP is at the node's MAC". With
// arp_announce=2 the sender is an address of the outgoing interface.
func TestARPAnnounceOfVIPs(t *testing.T) {
	p := newPair(t)
	p.routeVIPsViaNode(t) // the peer asks for the node's address only
	serveLocalAddr(t, p.node, servicePort)
	setSysctl(t, p.node, "net/ipv4/conf/all/arp_announce", "0")
	setSysctl(t, p.node, "net/ipv4/conf/eth0/arp_announce", "0")
	k := newKernel(t, p.node)
	vipA, vipB := netip.MustParseAddr("198.19.0.20"), netip.MustParseAddr("198.19.0.21")
	vip6 := netip.MustParseAddr("2001:db8:19::20")
	if err := k.AddAll([]netip.Addr{vipA, vipB, vip6}); err != nil {
		t.Fatal(err)
	}
	if got := resolve(t, p, p.node4); !bytes.Equal(got, p.nodeMAC) {
		t.Fatalf("peer cannot resolve the node: %v", got)
	}
	eth0, err := p.nodeH.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	// Make the node forget the peer, so that answering it takes an ARP
	// request; the peer (asked for its own address) learns the sender.
	forget := func(peer netip.Addr) {
		t.Helper()
		err := p.nodeH.NeighDel(&netlink.Neigh{LinkIndex: eth0.Attrs().Index, IP: peer.AsSlice()})
		if err != nil {
			t.Fatalf("forget the peer's MAC on the node: %v", err)
		}
	}

	forget(p.peer4)
	expectDelivered(t, "the peer", p.peer, vipA)
	if mac, _, err := neighbour(p.peer, vipA); err != nil || !bytes.Equal(mac, p.nodeMAC) {
		t.Fatalf("arp_announce=0: the peer has no entry for VIP %s (%v, %v); want the node's MAC, learned from the node's ARP request", vipA, mac, err)
	}

	setSysctl(t, p.node, "net/ipv4/conf/all/arp_announce", "2")
	forget(p.peer4)
	expectDelivered(t, "the peer", p.peer, vipB)
	if mac, _, err := neighbour(p.peer, vipB); err == nil {
		t.Fatalf("arp_announce=2: the peer learned VIP %s at %v; the node's ARP requests must name its own address", vipB, mac)
	}

	// IPv6 has no such setting and needs none: a solicitation names the
	// packet's source only if it is an address of the outgoing interface
	// (ndisc_solicit), which a VIP never is.
	// The peer talks to the VIP from a new address, which the node has
	// to solicit for; its entry for the node is static, so that it does
	// not announce the new address first.
	fresh := netip.MustParseAddr("2001:db8:18::21")
	peerEth0, err := p.peerH.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	static := &netlink.Neigh{LinkIndex: peerEth0.Attrs().Index, Family: netlink.FAMILY_V6,
		IP: p.node6.AsSlice(), HardwareAddr: p.nodeMAC, State: unix.NUD_PERMANENT}
	if err := p.peerH.NeighSet(static); err != nil {
		t.Fatal(err)
	}
	if err := p.peerH.AddrAdd(peerEth0, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(fresh, 64)), Flags: unix.IFA_F_NODAD}); err != nil {
		t.Fatal(err)
	}
	// Until its local route is in, the address is not ready to answer
	// solicitations (the kernel joins its solicited-node group first).
	waitAddressRoutes(t, p.peerH, fresh)
	viaFresh := &netlink.Route{Dst: ipNet(netip.PrefixFrom(vip6, 128)), Gw: p.node6.AsSlice(), Src: fresh.AsSlice()}
	if err := p.peerH.RouteAdd(viaFresh); err != nil {
		t.Fatal(err)
	}
	expectDelivered(t, "the peer", p.peer, vip6)
	if _, _, err := neighbour(p.node, fresh); err != nil {
		t.Fatalf("the node answered %s without soliciting for it: %v", fresh, err)
	}
	if mac, _, err := neighbour(p.peer, vip6); err == nil {
		t.Fatalf("the peer learned IPv6 VIP %s at %v from the node's solicitation", vip6, mac)
	}
}

// resolve makes the peer resolve a on eth0 (by sending it a datagram) and
// returns the link-layer address it learned, nil when resolution failed.
func resolve(t *testing.T, p *pair, a netip.Addr) net.HardwareAddr {
	t.Helper()
	if err := netnstest.InNetns(p.peer, func() error {
		c, err := net.Dial("udp", netip.AddrPortFrom(a, 9).String()) // discard
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("who has it?"))
		return err
	}); err != nil {
		t.Fatalf("send to %s: %v", a, err)
	}
	var mac net.HardwareAddr
	netnstest.WaitFor(t, 10*time.Second, pollInterval, fmt.Sprintf("peer's neighbour entry for %s to settle", a), func() (bool, string) {
		n, state, err := neighbour(p.peer, a)
		switch {
		case err != nil:
			return false, err.Error()
		case state&(unix.NUD_REACHABLE|unix.NUD_STALE|unix.NUD_DELAY|unix.NUD_PROBE) != 0:
			mac = n
			return true, ""
		case state&unix.NUD_FAILED != 0:
			return true, ""
		}
		return false, fmt.Sprintf("state %#x", state)
	})
	return mac
}

// neighbour returns ns's neighbour entry for a on any link.
func neighbour(ns netns.NsHandle, a netip.Addr) (net.HardwareAddr, int, error) {
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, 0, err
	}
	defer h.Close()
	family := netlink.FAMILY_V4
	if a.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := h.NeighList(0, family)
	if err != nil {
		return nil, 0, err
	}
	for _, n := range neighs {
		if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
			return n.HardwareAddr, n.State, nil
		}
	}
	return nil, 0, fmt.Errorf("no entry yet")
}
