//go:build kernel

package vip

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The kernel tests and benchmarks run as root on the running kernel, each
// in network namespaces it creates; the caller's namespace (the host's) is
// never changed and no packet leaves the test's namespaces.
//
// Address plan:
//
//	198.18.0.10/24, 2001:db8:18::10/64    node: eth0 (veth to peer)
//	198.18.0.20/24, 2001:db8:18::20/64    peer: eth0
//	198.19.0.0/16,  2001:db8:19::/64      VIPs (the services range)
//	198.19.255.0/24, 2001:db8:0:ff::/120  other owners' local routes

// pollInterval is how often waits look at the kernel's state again.
const pollInterval = 10 * time.Millisecond

// newKernel is the implementation under test, working in ns.
func newKernel(tb testing.TB, ns netns.NsHandle) *Kernel {
	tb.Helper()
	k, err := NewKernel(ns)
	if err != nil {
		tb.Fatalf("NewKernel: %v", err)
	}
	tb.Cleanup(func() { _ = k.Close() })
	return k
}

// pair is two namespaces joined by a veth pair, eth0 on both sides, as a
// node and a host on its link.
type pair struct {
	node, peer   netns.NsHandle
	nodeH, peerH *netlink.Handle
	nodeMAC      net.HardwareAddr
	node4, node6 netip.Addr
	peer4, peer6 netip.Addr
}

func newPair(t *testing.T) *pair {
	t.Helper()
	p := &pair{
		node: netnstest.New(t), peer: netnstest.New(t),
		node4: netip.MustParseAddr("198.18.0.10"), node6: netip.MustParseAddr("2001:db8:18::10"),
		peer4: netip.MustParseAddr("198.18.0.20"), peer6: netip.MustParseAddr("2001:db8:18::20"),
	}
	p.nodeH, p.peerH = netnstest.Handle(t, p.node), netnstest.Handle(t, p.peer)
	// No duplicate address detection on the links to come: their
	// link-local addresses would stay unusable for a second or two, and
	// with them IPv6 neighbour solicitations.
	for _, ns := range []netns.NsHandle{p.node, p.peer} {
		setSysctl(t, ns, "net/ipv6/conf/default/accept_dad", "0")
	}
	// eth0 on both sides; their own IPv6 addresses skip duplicate address
	// detection too (netnstest.LinkUp).
	netnstest.Veth(t,
		netnstest.End{NS: p.node, Name: "eth0", Addrs: []string{prefix(p.node4, 24), prefix(p.node6, 64)}},
		netnstest.End{NS: p.peer, Name: "eth0", Addrs: []string{prefix(p.peer4, 24), prefix(p.peer6, 64)}})
	eth0, err := p.nodeH.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	p.nodeMAC = eth0.Attrs().HardwareAddr
	waitAddressRoutes(t, p.nodeH, p.node4, p.node6)
	waitAddressRoutes(t, p.peerH, p.peer4, p.peer6)
	netnstest.WaitFor(t, 10*time.Second, pollInterval, "veth carrier up on both sides", func() (bool, string) {
		for _, h := range []*netlink.Handle{p.nodeH, p.peerH} {
			l, err := h.LinkByName("eth0")
			if err != nil {
				return false, err.Error()
			}
			if l.Attrs().OperState != netlink.OperUp {
				return false, "operstate " + l.Attrs().OperState.String()
			}
		}
		return true, ""
	})
	return p
}

// prefix is a with a prefix length, in CIDR notation.
func prefix(a netip.Addr, bits int) string {
	return netip.PrefixFrom(a, bits).String()
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// waitAddressRoutes waits for the kernel's local routes of addresses just
// added: IPv6 installs them from a work queue, after the call returned.
func waitAddressRoutes(t *testing.T, h *netlink.Handle, addrs ...netip.Addr) {
	t.Helper()
	netnstest.WaitFor(t, 10*time.Second, pollInterval, fmt.Sprintf("local routes of %v", addrs), func() (bool, string) {
		routes := localRoutes(t, h)
		for _, a := range addrs {
			if routes[addressRouteKey(a)] != unix.RTPROT_KERNEL {
				return false, fmt.Sprintf("no kernel route for %s in %v", a, routes)
			}
		}
		return true, ""
	})
}

// addressRouteKey is how localRoutes names the kernel's local route of an
// address.
func addressRouteKey(a netip.Addr) string {
	return netip.PrefixFrom(a, a.BitLen()).String() + " metric 0"
}

// routeVIPsViaNode gives the peer routes to the VIP ranges through the
// node, as a router in front of a node would.
func (p *pair) routeVIPsViaNode(t *testing.T) {
	t.Helper()
	for _, r := range []struct {
		dst string
		gw  netip.Addr
	}{{"198.19.0.0/16", p.node4}, {"2001:db8:19::/64", p.node6}} {
		route := &netlink.Route{Dst: ipNet(netip.MustParsePrefix(r.dst)), Gw: r.gw.AsSlice()}
		if err := p.peerH.RouteAdd(route); err != nil {
			t.Fatalf("peer route %s via %s: %v", r.dst, r.gw, err)
		}
	}
}

// setSysctl writes /proc/sys/<key> inside ns (net.* sysctls are per
// namespace, resolved by the opening thread's namespace).
func setSysctl(t *testing.T, ns netns.NsHandle, key, value string) {
	t.Helper()
	if err := netnstest.InNetns(ns, func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	}); err != nil {
		t.Fatalf("sysctl %s=%s: %v", key, value, err)
	}
}

// serveLocalAddr listens on every address of ns, both families, on port,
// and answers each connection with the local address it arrived at: the
// VIP, when local delivery works.
func serveLocalAddr(t *testing.T, ns netns.NsHandle, port int) {
	t.Helper()
	var l net.Listener
	if err := netnstest.InNetns(ns, func() (err error) {
		l, err = net.Listen("tcp", fmt.Sprintf(":%d", port)) // [::]: both families
		return err
	}); err != nil {
		t.Fatalf("listen :%d: %v", port, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			local := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
			_, _ = io.WriteString(c, local.String()+"\n")
			_ = c.Close()
		}
	}()
}

// askLocalAddr connects from ns to addr:port and returns the address the
// server saw the connection arrive at.
func askLocalAddr(ctx context.Context, ns netns.NsHandle, addr netip.Addr, port int) (netip.Addr, error) {
	var c net.Conn
	if err := netnstest.InNetns(ns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(addr, uint16(port)).String())
		return err
	}); err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return netip.Addr{}, fmt.Errorf("read from %s: %w", addr, err)
	}
	return netip.ParseAddr(strings.TrimSpace(line))
}

// localRoutes returns every route of table local in ns with its protocol,
// for checking what the implementation left alone.
func localRoutes(t *testing.T, h *netlink.Handle) map[string]netlink.RouteProtocol {
	t.Helper()
	out := map[string]netlink.RouteProtocol{}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteListFiltered(family, &netlink.Route{Table: unix.RT_TABLE_LOCAL}, netlink.RT_FILTER_TABLE)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Dst != nil && r.Type == unix.RTN_LOCAL {
				out[fmt.Sprintf("%s metric %d", r.Dst, r.Priority)] = r.Protocol
			}
		}
	}
	return out
}
