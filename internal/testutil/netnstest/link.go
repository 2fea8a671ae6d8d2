package netnstest

import (
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// End is one side of a veth pair: its namespace, the link's name there
// and its addresses (CIDR notation, "198.18.0.1/24"; none is fine).
type End struct {
	NS    netns.NsHandle
	Name  string
	Addrs []string
}

// Veth links a and b with a veth pair, created in a.NS with its peer moved
// into b.NS, and sets both sides up with their addresses (see LinkUp).
func Veth(tb testing.TB, a, b End) {
	tb.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.Name}, PeerName: b.Name,
		PeerNamespace: netlink.NsFd(int(b.NS))}
	ha := Handle(tb, a.NS)
	if err := ha.LinkAdd(veth); err != nil {
		tb.Fatalf("veth %s/%s: %v", a.Name, b.Name, err)
	}
	LinkUp(tb, ha, a.Name, a.Addrs...)
	LinkUp(tb, Handle(tb, b.NS), b.Name, b.Addrs...)
}

// LinkUp gives link name of h the addresses addrs (CIDR notation) and sets
// it up. IPv6 addresses skip duplicate address detection, so they are
// usable at once instead of a second or two later.
func LinkUp(tb testing.TB, h *netlink.Handle, name string, addrs ...string) netlink.Link {
	tb.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		tb.Fatalf("link %s: %v", name, err)
	}
	for _, s := range addrs {
		a, err := netlink.ParseAddr(s)
		if err != nil {
			tb.Fatal(err)
		}
		if a.IP.To4() == nil {
			a.Flags |= unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(l, a); err != nil {
			tb.Fatalf("address %s on %s: %v", s, name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		tb.Fatalf("%s up: %v", name, err)
	}
	return l
}
