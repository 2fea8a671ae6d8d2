//go:build e2eguest

package cluster

import (
	"bytes"
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
)

// The demo's view of routing: what a user would look at with ip route and
// routerd status. The routes are read over netlink, as the daemons do
// (nothing here needs iproute2), and printed the way ip route does.

// showBGPRoutes prints every node's routes that routerd installed from
// what it learned over BGP, once each node has one to every other node's
// pod CIDR.
func (d *demo) showBGPRoutes(t *testing.T) {
	d.title("Routes learned over BGP",
		"routerd on each node learns the other nodes' pod CIDRs over iBGP and installs a route to each,",
		fmt.Sprintf("via that node, with its own route protocol (%d). Read in each node over netlink, printed as ip route does:", routeProtocol))
	for _, n := range d.c.nodes {
		var routes []netlink.Route
		harness.Eventually(t, convergeTimeout, pollInterval, n.Name+": a route to every other node's pod CIDR", func() (bool, string) {
			var err error
			if routes, err = bgpRoutes(n); err != nil {
				return false, err.Error()
			}
			for _, o := range d.c.nodes {
				if o != n && !hasRoute(routes, o.PodCIDR, o.IP) {
					return false, fmt.Sprintf("no route to %s via %s among %d", o.PodCIDR, o.IP, len(routes))
				}
			}
			return true, ""
		})
		fmt.Fprintf(d.w, "\n%s$ ip route show proto %d\n", n.Name, routeProtocol)
		for _, r := range routes {
			fmt.Fprintln(d.w, netns.FormatRoute(n.NetNS, r))
		}
	}
}

// bgpRoutes are routerd's IPv4 routes in n's main table, by destination.
func bgpRoutes(n *netns.Node) ([]netlink.Route, error) {
	routes, err := n.Netlink().RouteListFiltered(netlink.FAMILY_V4,
		&netlink.Route{Protocol: routeProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, fmt.Errorf("routes of %s: %w", n.Name, err)
	}
	slices.SortFunc(routes, func(a, b netlink.Route) int { return cmp.Compare(prefixOf(a).String(), prefixOf(b).String()) })
	return routes, nil
}

func prefixOf(r netlink.Route) netip.Prefix {
	if r.Dst == nil {
		return netip.Prefix{}
	}
	addr, _ := netip.AddrFromSlice(r.Dst.IP)
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), ones)
}

func hasRoute(routes []netlink.Route, dst netip.Prefix, via netip.Addr) bool {
	return slices.ContainsFunc(routes, func(r netlink.Route) bool {
		gw, _ := netip.AddrFromSlice(r.Gw)
		return prefixOf(r) == dst && gw.Unmap() == via
	})
}

// showRouterdStatus runs `routerd status` for every node once its BGP
// sessions are all up, and prints it.
func (d *demo) showRouterdStatus(t *testing.T) {
	d.title("routerd status",
		"routerd's status subcommand asks the node's three daemons over their unix sockets: health, syncs,",
		"the peers each daemon watches, and routerd's BGP sessions (the other nodes and BIRD in the world).")
	ctx := ctxFor(t, convergeTimeout)
	for i, n := range d.c.nodes {
		rd := d.c.daemons[i]["routerd"]
		d.c.waitBack(t, rd) // every BGP session established, End-of-RIB in
		bin, _ := rd.Binary()
		args := []string{"status", "--run-dir", rd.RunDir()}
		fmt.Fprintf(d.w, "\n%s$ routerd %s\n", n.Name, strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, bin, args...)
		// Nothing of the test's environment: its NODENET_* variables
		// would be read as flags.
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		_, _ = d.w.Write(out.Bytes())
		if err != nil {
			// Exit status 1: a daemon unhealthy or unreachable, which the
			// output names.
			t.Fatalf("%s status on %s: %v", filepath.Base(bin), n.Name, err)
		}
	}
}
