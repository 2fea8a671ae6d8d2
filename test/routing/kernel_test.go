//go:build kernel

package routing

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/test/netns"
)

// What the nodes' kernels hold, and every change of routerd's routes.

// routeString renders a route as `ip route` would, the link by name.
func routeString(n *netns.Node, r netlink.Route) string {
	var b strings.Builder
	switch {
	case r.Dst == nil:
		b.WriteString("default")
	default:
		b.WriteString(r.Dst.String())
	}
	if r.Gw != nil {
		fmt.Fprintf(&b, " via %s", r.Gw)
	}
	if r.LinkIndex > 0 {
		name := fmt.Sprintf("if%d", r.LinkIndex)
		if l, err := n.Netlink().LinkByIndex(r.LinkIndex); err == nil {
			name = l.Attrs().Name
		}
		fmt.Fprintf(&b, " dev %s", name)
	}
	fmt.Fprintf(&b, " proto %d table %d", int(r.Protocol), r.Table)
	if r.Type != unix.RTN_UNICAST {
		fmt.Fprintf(&b, " type %d", r.Type)
	}
	return b.String()
}

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
			ours = append(ours, routeString(n, r))
		case r.Dst != nil && f.isOtherPodCIDR(i, r.Dst):
			foreign = append(foreign, routeString(n, r))
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

// routeEvent is one route notification of routerd's protocol.
type routeEvent struct {
	node  string
	at    time.Time
	kind  string // "add/replace" (RTM_NEWROUTE) or "delete" (RTM_DELROUTE)
	route string
	dst   netip.Prefix
}

func (e routeEvent) String() string {
	return fmt.Sprintf("%s %s: %s %s", e.at.Format("15:04:05.000000"), e.node, e.kind, e.route)
}

// routeWatch records every RTM_NEWROUTE and RTM_DELROUTE of routerd's
// protocol the kernels of some nodes announce: a route added, replaced
// (even with identical attributes) or removed.
type routeWatch struct {
	nodes   []*netns.Node
	stopped chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	events  []routeEvent
	errs    []error
	barrier map[string]bool // nodes whose barrier route was seen
}

// barrierDst is the destination of the route stop adds and removes in each
// node to know that every notification before it has been read: a
// blackhole, protocol static, in the test range, unused otherwise.
var barrierDst = netip.MustParsePrefix("198.19.255.254/32")

// watchRoutes subscribes to the route notifications of the nodes given
// (by index). Stop it with stop, which returns what it saw.
func (f *fixture) watchRoutes(t testing.TB, idx []int) *routeWatch {
	t.Helper()
	w := &routeWatch{stopped: make(chan struct{}), barrier: map[string]bool{}}
	t.Cleanup(func() { w.close() })
	for _, i := range idx {
		n := f.nodes[i]
		w.nodes = append(w.nodes, n)
		ch := make(chan netlink.RouteUpdate, 1024)
		h := vnetns.NsHandle(n.Fd())
		err := netlink.RouteSubscribeWithOptions(ch, w.stopped, netlink.RouteSubscribeOptions{
			Namespace: &h,
			// Notifications lost to a full buffer would hide changes.
			ReceiveBufferSize: 4 << 20,
			ErrorCallback: func(err error) {
				select {
				case <-w.stopped: // the socket closed by stop
				default:
					w.mu.Lock()
					w.errs = append(w.errs, fmt.Errorf("%s: route notifications: %w", n.Name, err))
					w.mu.Unlock()
				}
			},
		})
		if err != nil {
			t.Fatalf("%s: subscribe to route notifications: %v", n.Name, err)
		}
		w.wg.Go(func() {
			for u := range ch {
				w.record(n, u)
			}
		})
	}
	return w
}

func (w *routeWatch) record(n *netns.Node, u netlink.RouteUpdate) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var dst netip.Prefix
	if u.Dst != nil {
		if ip, ok := netip.AddrFromSlice(u.Dst.IP); ok {
			ones, _ := u.Dst.Mask.Size()
			dst = netip.PrefixFrom(ip.Unmap(), ones)
		}
	}
	if dst == barrierDst && u.Protocol == unix.RTPROT_STATIC {
		if u.Type == unix.RTM_NEWROUTE {
			w.barrier[n.Name] = true
		}
		return
	}
	if u.Protocol != routeProtocol {
		return
	}
	kind := "add/replace"
	if u.Type == unix.RTM_DELROUTE {
		kind = "delete"
	}
	w.events = append(w.events, routeEvent{node: n.Name, at: time.Now(), kind: kind, route: routeString(n, u.Route), dst: dst})
}

// stop makes sure every notification sent so far has been read (a
// barrier route added and removed in each node: its notification comes
// after all earlier ones), ends the subscriptions and returns the events
// of routerd's protocol, in order of arrival per node.
func (w *routeWatch) stop(t testing.TB) []routeEvent {
	t.Helper()
	for _, n := range w.nodes {
		r := &netlink.Route{Dst: &net.IPNet{IP: barrierDst.Addr().AsSlice(), Mask: net.CIDRMask(32, 32)},
			Type: unix.RTN_BLACKHOLE, Protocol: unix.RTPROT_STATIC}
		if err := n.Netlink().RouteAdd(r); err != nil {
			t.Fatalf("%s: barrier route: %v", n.Name, err)
		}
		if err := n.Netlink().RouteDel(r); err != nil {
			t.Fatalf("%s: barrier route: %v", n.Name, err)
		}
	}
	netnstest.WaitFor(t, convergeTimeout, pollInterval, "the route notifications of every node read up to now", func() (bool, string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		var missing []string
		for _, n := range w.nodes {
			if !w.barrier[n.Name] {
				missing = append(missing, n.Name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("no barrier notification yet from %v", missing)
	})
	w.close()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, err := range w.errs {
		t.Errorf("the route watch may have missed notifications: %v", err)
	}
	return slices.Clone(w.events)
}

func (w *routeWatch) close() {
	select {
	case <-w.stopped:
	default:
		close(w.stopped)
	}
	w.wg.Wait()
}
