//go:build kernel

package routing

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/test/netns"
)

// What the nodes' kernels hold, and every change of routerd's routes.

// allRoutes are node n's IPv4 routes of every table.
func allRoutes(n *netns.Node) ([]netlink.Route, error) {
	rs, err := n.Netlink().RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("%s: list routes: %w", n.Name, err)
	}
	return rs, nil
}

// expectedRoutes are the routes node i must have from routerd: one to
// each other live node's pod CIDR via that node's IP on eth0, in the main
// table, with routerd's protocol.
func (f *fixture) expectedRoutes(i int) []string {
	var want []string
	for _, j := range f.live() {
		if j != i {
			want = append(want, fmt.Sprintf("%s via %s dev eth0 proto %d table %d", f.cidrs[j], f.nodes[j].IP, routeProtocol, unix.RT_TABLE_MAIN))
		}
	}
	slices.Sort(want)
	return want
}

// routesOK compares node i's routes with what routerd must have put
// there: its routes of protocol 196 are exactly expectedRoutes, and no
// other route (someone else's) leads to a pod CIDR. why says what
// differs.
func (f *fixture) routesOK(i int) (ok bool, why string, err error) {
	n := f.nodes[i]
	rs, err := allRoutes(n)
	if err != nil {
		return false, "", err
	}
	var ours, foreign []string
	for _, r := range rs {
		switch {
		case r.Protocol == routeProtocol:
			ours = append(ours, netns.FormatRoute(n.NetNS, r))
		case r.Dst != nil && f.isOtherPodCIDR(i, r.Dst):
			foreign = append(foreign, netns.FormatRoute(n.NetNS, r))
		}
	}
	slices.Sort(ours)
	want := f.expectedRoutes(i)
	if len(foreign) > 0 {
		return false, fmt.Sprintf("%s: routes to pod CIDRs not of routerd's protocol %d: %v", n.Name, routeProtocol, foreign), nil
	}
	if !slices.Equal(ours, want) {
		return false, fmt.Sprintf("%s: routes of protocol %d %q, want %q", n.Name, routeProtocol, ours, want), nil
	}
	return true, "", nil
}

func (f *fixture) isOtherPodCIDR(i int, dst *net.IPNet) bool {
	ip, ok := netip.AddrFromSlice(dst.IP)
	if !ok {
		return false
	}
	ones, _ := dst.Mask.Size()
	p := netip.PrefixFrom(ip.Unmap(), ones)
	for j, c := range f.cidrs {
		if j != i && c.Overlaps(p) {
			return true
		}
	}
	return false
}

// waitRoutes waits until every live node has exactly its expected routes
// and returns how long that took.
func (f *fixture) waitRoutes(t *testing.T, timeout time.Duration, what string) time.Duration {
	t.Helper()
	begin := time.Now()
	netnstest.WaitFor(t, timeout, pollInterval, what, func() (bool, string) {
		var whys []string
		for _, i := range f.live() {
			ok, why, err := f.routesOK(i)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				whys = append(whys, why)
			}
		}
		return len(whys) == 0, strings.Join(whys, "; ")
	})
	return time.Since(begin)
}
