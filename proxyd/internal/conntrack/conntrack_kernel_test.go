//go:build kernel

package conntrack

import (
	"net"
	"net/netip"
	"testing"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Address plan: VIP 198.19.0.10:53, backends 198.18.128.5 and
// 198.18.128.6, client 198.18.0.20; all inside a namespace this test makes.

func udpFlow(client netip.AddrPort, vip netip.AddrPort, backend netip.AddrPort) *netlink.ConntrackFlow {
	return &netlink.ConntrackFlow{
		FamilyType: unix.AF_INET,
		Forward: netlink.IPTuple{SrcIP: net.IP(client.Addr().AsSlice()), DstIP: net.IP(vip.Addr().AsSlice()),
			SrcPort: client.Port(), DstPort: vip.Port(), Protocol: unix.IPPROTO_UDP},
		Reverse: netlink.IPTuple{SrcIP: net.IP(backend.Addr().AsSlice()), DstIP: net.IP(client.Addr().AsSlice()),
			SrcPort: backend.Port(), DstPort: client.Port(), Protocol: unix.IPPROTO_UDP},
		TimeOut: 100,
	}
}

func TestDeleteUDPRemovesOnlyTheBackendsFlows(t *testing.T) {
	h := netnstest.Handle(t, netnstest.New(t))
	vip := netip.MustParseAddrPort("198.19.0.10:53")
	gone := netip.MustParseAddrPort("198.18.128.5:5353")
	kept := netip.MustParseAddrPort("198.18.128.6:5353")
	for i, f := range []*netlink.ConntrackFlow{
		udpFlow(netip.MustParseAddrPort("198.18.0.20:40000"), vip, gone),
		udpFlow(netip.MustParseAddrPort("198.18.0.20:40001"), vip, gone),
		udpFlow(netip.MustParseAddrPort("198.18.0.20:40002"), vip, kept),
		// Same backend behind another VIP port: not this flow.
		udpFlow(netip.MustParseAddrPort("198.18.0.20:40003"), netip.MustParseAddrPort("198.19.0.10:54"), gone),
	} {
		if err := h.ConntrackCreate(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
			t.Fatalf("create flow %d: %v", i, err)
		}
	}
	c := &Netlink{Handle: h}
	n, err := c.DeleteUDP([]Flow{{VIP: vip.Addr(), Port: vip.Port(), Backend: gone.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("deleted %d entries, want 2", n)
	}
	left, err := h.ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	var ports []uint16
	for _, f := range left {
		ports = append(ports, f.Forward.SrcPort)
	}
	if len(ports) != 2 || !(contains(ports, 40002) && contains(ports, 40003)) {
		t.Fatalf("entries left for client ports %v, want 40002 and 40003", ports)
	}
}

func contains(s []uint16, v uint16) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
