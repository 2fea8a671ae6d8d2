//go:build kernel

package routes

// Helpers of the kernel-tagged tests: the real adapter against the host's
// kernel, as root, each test in throwaway network namespaces of its own
// (the kernel removes them with their last handle and socket):
//
//	go test -tags kernel ./routerd/internal/routes/
//
// Address plan: the node namespace has a veth to a neighbour namespace
// with the connected subnets 198.18.0.0/24 (node .1, neighbour .2) and
// 2001:2::/64 (node ::1, neighbour ::2, the IPv6 benchmarking range);
// next hops are addresses of those subnets (they need not answer: a
// gateway route only needs its subnet connected). Routed prefixes are
// 198.19.0.0/16 (pod CIDRs, /24 each) and 2001:2:0:1000::/52 (/64 each).

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/routerd/internal/model"
)

var (
	hop4  = netip.MustParseAddr("198.18.0.2")
	hop4b = netip.MustParseAddr("198.18.0.3")
	hop6  = netip.MustParseAddr("2001:2::2")
)

// node is a namespace with connected subnets, and the adapter in it.
type node struct {
	ns netns.NsHandle
	h  *netlink.Handle
	k  *Kernel
}

// newNode makes a node namespace with its veth to a neighbour; it skips
// unless root.
func newNode(tb testing.TB, cfg Config) *node {
	tb.Helper()
	netnstest.RequireRoot(tb, "creates network namespaces and writes routes in them; run: sudo go test -tags kernel ./routerd/internal/routes/")
	ns, peer := netnstest.New(tb), netnstest.New(tb)
	netnstest.Veth(tb, netnstest.End{NS: ns, Name: "eth0", Addrs: []string{"198.18.0.1/24", "2001:2::1/64"}},
		netnstest.End{NS: peer, Name: "eth0", Addrs: []string{"198.18.0.2/24", "2001:2::2/64"}})
	n := &node{ns: ns, h: netnstest.Handle(tb, ns)}
	n.k = n.kernel(tb, cfg)
	return n
}

// kernel returns a new adapter in the node's namespace (a restart).
func (n *node) kernel(tb testing.TB, cfg Config) *Kernel {
	cfg.NetNS = int(n.ns)
	k := New(cfg)
	tb.Cleanup(func() { _ = k.Close() })
	return k
}

// pod4 and pod6 are the i-th routed prefixes of each family.
func pod4(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i), 0}), 24)
}

func pod6(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0, 2, 0, 0, 0x10 | byte(i>>8)&0x0f, byte(i)}), 64)
}

func direct(p netip.Prefix, via netip.Addr) model.Route { return model.Route{Prefix: p, NextHop: via} }

// dump lists the routes of a table and protocol as the kernel has them
// (protocol 0: all).
func dump(tb testing.TB, h *netlink.Handle, table int, protocol uint8) []netlink.Route {
	tb.Helper()
	filter, mask := &netlink.Route{Table: table}, uint64(netlink.RT_FILTER_TABLE)
	if protocol != 0 {
		filter.Protocol, mask = netlink.RouteProtocol(protocol), mask|netlink.RT_FILTER_PROTOCOL
	}
	rs, err := retryDump(func() ([]netlink.Route, error) { return h.RouteListFiltered(netlink.FAMILY_ALL, filter, mask) })
	if err != nil {
		tb.Fatalf("route dump: %v", err)
	}
	return rs
}

// routeStrings renders routes for comparison: prefix, gateway, protocol,
// table, metric, link name when it is not the veth the kernel resolved.
func routeStrings(tb testing.TB, h *netlink.Handle, rs []netlink.Route) []string {
	tb.Helper()
	var out []string
	for _, r := range rs {
		if r.Type == unix.RTN_UNICAST && r.Gw == nil && r.Family == unix.AF_INET6 && r.Dst.IP.IsLinkLocalUnicast() {
			continue // fe80::/64 of the veth
		}
		s := fmt.Sprintf("%v", r.Dst)
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		if r.Flags&unix.RTNH_F_ONLINK != 0 {
			s += " onlink"
		}
		out = append(out, fmt.Sprintf("%s proto %d table %d metric %d", s, r.Protocol, r.Table, r.Priority))
	}
	slices.Sort(out)
	return out
}

// addRoute writes a route as someone else would.
func addRoute(tb testing.TB, h *netlink.Handle, r *netlink.Route) {
	tb.Helper()
	if err := h.RouteAdd(r); err != nil {
		tb.Fatalf("route add %v: %v", r, err)
	}
}

// foreign is a route of someone else's (or of routerd's protocol written
// by someone else): p via via, protocol proto, table table.
func foreign(p netip.Prefix, via netip.Addr, proto uint8, table int) *netlink.Route {
	return &netlink.Route{
		Dst:      &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Gw:       via.AsSlice(),
		Protocol: netlink.RouteProtocol(proto),
		Table:    table,
	}
}

func mustApply(tb testing.TB, k Interface, d Desired) Result {
	tb.Helper()
	res, err := k.Apply(d)
	if err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	return res
}

func wantStrings(tb testing.TB, what string, got, want []string) {
	tb.Helper()
	slices.Sort(want)
	if !slices.Equal(got, want) {
		tb.Fatalf("%s =\n%q\nwant\n%q", what, got, want)
	}
}
