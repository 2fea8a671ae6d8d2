package netns

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
)

// FormatRoute renders a route of node n as `ip route` would, the link by
// name.
func FormatRoute(n *NetNS, r netlink.Route) string {
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

// RouteEvent is one route notification of the watched protocol.
type RouteEvent struct {
	Node  string
	At    time.Time
	Kind  string // "add/replace" (RTM_NEWROUTE) or "delete" (RTM_DELROUTE)
	Route string // FormatRoute's
	Dst   netip.Prefix
}

func (e RouteEvent) String() string {
	return fmt.Sprintf("%s %s: %s %s", e.At.Format("15:04:05.000000"), e.Node, e.Kind, e.Route)
}

// RouteWatch records every RTM_NEWROUTE and RTM_DELROUTE of one route
// protocol (routerd's) the kernels of some nodes announce: a route added,
// replaced (even with identical attributes) or removed. A restart that
// changes nothing announces none.
type RouteWatch struct {
	proto   netlink.RouteProtocol
	nodes   []*Node
	stopped chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	events  []RouteEvent
	errs    []error
	barrier map[string]bool // nodes whose barrier route was seen
}

// barrierDst is the destination of the route Stop adds and removes in each
// node to know that every notification before it has been read: a
// blackhole, protocol static, in the test range, unused otherwise.
var barrierDst = netip.MustParsePrefix("198.19.255.254/32")

// WatchRoutes subscribes to the route notifications of protocol proto in
// the nodes. Stop returns what it saw; t's end stops it too.
func WatchRoutes(t testing.TB, proto int, nodes ...*Node) *RouteWatch {
	t.Helper()
	w := &RouteWatch{proto: netlink.RouteProtocol(proto), stopped: make(chan struct{}), barrier: map[string]bool{}}
	t.Cleanup(w.close)
	for _, n := range nodes {
		w.nodes = append(w.nodes, n)
		ch := make(chan netlink.RouteUpdate, 1024)
		h := vnetns.NsHandle(n.Fd())
		err := netlink.RouteSubscribeWithOptions(ch, w.stopped, netlink.RouteSubscribeOptions{
			Namespace: &h,
			// Notifications lost to a full buffer would hide changes.
			ReceiveBufferSize: 4 << 20,
			ErrorCallback: func(err error) {
				select {
				case <-w.stopped: // the socket closed by Stop
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

func (w *RouteWatch) record(n *Node, u netlink.RouteUpdate) {
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
	if u.Protocol != w.proto {
		return
	}
	kind := "add/replace"
	if u.Type == unix.RTM_DELROUTE {
		kind = "delete"
	}
	w.events = append(w.events, RouteEvent{Node: n.Name, At: time.Now(), Kind: kind, Route: FormatRoute(n.NetNS, u.Route), Dst: dst})
}

// Stop makes sure every notification sent so far has been read (a barrier
// route added and removed in each node: its notification comes after all
// earlier ones), ends the subscriptions and returns the events, in order
// of arrival per node. It waits at most timeout for the barriers.
func (w *RouteWatch) Stop(t testing.TB, timeout time.Duration) []RouteEvent {
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
	deadline := time.Now().Add(timeout)
	for {
		w.mu.Lock()
		var missing []string
		for _, n := range w.nodes {
			if !w.barrier[n.Name] {
				missing = append(missing, n.Name)
			}
		}
		w.mu.Unlock()
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no barrier route notification after %v from %v", timeout, missing)
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
	w.close()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, err := range w.errs {
		t.Errorf("the route watch may have missed notifications: %v", err)
	}
	return slices.Clone(w.events)
}

func (w *RouteWatch) close() {
	select {
	case <-w.stopped:
	default:
		close(w.stopped)
	}
	w.wg.Wait()
}
