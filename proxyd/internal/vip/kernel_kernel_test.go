//go:build kernel

package vip

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vipRange returns n VIPs of the services range, IPv4 from 198.19.0.1 or
// IPv6 from 2001:db8:19::1.
func vipRange(n int, v6 bool) []netip.Addr {
	a := netip.MustParseAddr("198.19.0.1")
	if v6 {
		a = netip.MustParseAddr("2001:db8:19::1")
	}
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

func sorted(vips ...[]netip.Addr) []netip.Addr {
	out := slices.Concat(vips...)
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func TestKernelAddListDelete(t *testing.T) {
	ns := netnstest.New(t)
	k := newKernel(t, ns)
	if got := mustList(t, k); len(got) != 0 {
		t.Fatalf("fresh namespace lists %v", got)
	}
	v4, v6 := netip.MustParseAddr("198.19.0.10"), netip.MustParseAddr("2001:db8:19::10")
	for _, v := range []netip.Addr{v6, v4} {
		if err := k.Add(v); err != nil {
			t.Fatalf("Add(%s): %v", v, err)
		}
	}
	if got, want := mustList(t, k), []netip.Addr{v4, v6}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	// The routes are what the package comment says.
	routes := localRoutes(t, netnstest.Handle(t, ns))
	for _, dst := range []string{"198.19.0.10/32 metric 79", "2001:db8:19::10/128 metric 79"} {
		if p, ok := routes[dst]; !ok || p != RouteProtocol {
			t.Errorf("local route %s: protocol %v (present %v), want %d; routes %v", dst, p, ok, RouteProtocol, routes)
		}
	}
	if err := k.Add(v4); err != nil {
		t.Fatalf("Add of a VIP proxyd's route delivers: %v, want nil", err)
	}
	if err := k.Delete(v4); err != nil {
		t.Fatalf("Delete(%s): %v", v4, err)
	}
	if err := k.Delete(v4); err != nil {
		t.Fatalf("Delete of a VIP without a route: %v, want nil", err)
	}
	if got, want := mustList(t, k), []netip.Addr{v6}; !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	var ve *VIPError
	if err := k.Add(netip.MustParseAddr("::ffff:198.19.0.1")); !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Add(mapped) = %v, want a *VIPError wrapping ErrInvalid", err)
	}
}

func TestKernelBatches(t *testing.T) {
	ns := netnstest.New(t)
	k := newKernel(t, ns)
	// More than one chunk of each family, a duplicate and two bad VIPs.
	v4, v6 := vipRange(3*defaultBatchSize+7, false), vipRange(defaultBatchSize+1, true)
	in := slices.Concat(v4, v6, []netip.Addr{v4[5], {}, netip.MustParseAddr("127.0.0.2")})
	err := k.AddAll(in)
	if !errors.Is(err, ErrInvalid) || len(FailedVIPs(err)) != 2 {
		t.Fatalf("AddAll: %v; want exactly the two bad VIPs to fail", err)
	}
	want := sorted(v4, v6)
	if got := mustList(t, k); !slices.Equal(got, want) {
		t.Fatalf("List: %d VIPs, want %d", len(got), len(want))
	}
	// Again: everything is there already (each answered EEXIST, resolved
	// as proxyd's by one dump).
	if err := k.AddAll(want); err != nil {
		t.Fatalf("AddAll of present VIPs: %v", err)
	}
	gone := slices.Concat(v4[:10], v6[:10], vipRange(5, false)[:5]) // the last 5 twice
	if err := k.DeleteAll(append(gone, netip.MustParseAddr("198.19.200.1"))); err != nil {
		t.Fatalf("DeleteAll (with missing VIPs): %v", err)
	}
	if got := mustList(t, k); !slices.Equal(got, sorted(v4[10:], v6[10:])) {
		t.Fatalf("after DeleteAll: %d VIPs, want %d", len(got), len(v4)+len(v6)-20)
	}
	if err := k.DeleteAll(mustList(t, k)); err != nil {
		t.Fatal(err)
	}
	if got := mustList(t, k); len(got) != 0 {
		t.Fatalf("after deleting everything: %v", got)
	}
}

// Routes that are not proxyd's are never listed and never deleted, and
// proxyd's routes coexist with them.
func TestKernelLeavesOtherRoutesAlone(t *testing.T) {
	p := newPair(t)
	h := p.nodeH
	lo := 1
	foreign := []*netlink.Route{
		// An administrator's or another daemon's local routes.
		{Dst: ipNet(netip.MustParsePrefix("198.19.255.1/32")), LinkIndex: lo, Table: unix.RT_TABLE_LOCAL,
			Type: unix.RTN_LOCAL, Scope: unix.RT_SCOPE_HOST, Protocol: unix.RTPROT_STATIC},
		{Dst: ipNet(netip.MustParsePrefix("198.19.255.2/32")), LinkIndex: lo, Table: unix.RT_TABLE_LOCAL,
			Type: unix.RTN_LOCAL, Scope: unix.RT_SCOPE_HOST, Protocol: 78}, // routerd's number
		{Dst: ipNet(netip.MustParsePrefix("2001:db8:19::ff/128")), LinkIndex: lo, Table: unix.RT_TABLE_LOCAL,
			Type: unix.RTN_LOCAL, Protocol: unix.RTPROT_BOOT},
		// proxyd's protocol, but not a local-table local route.
		{Dst: ipNet(netip.MustParsePrefix("198.19.255.3/32")), LinkIndex: lo, Scope: unix.RT_SCOPE_LINK,
			Protocol: RouteProtocol},
	}
	for _, r := range foreign {
		if err := h.RouteAdd(r); err != nil {
			t.Fatalf("foreign route %s: %v", r.Dst, err)
		}
	}
	// The node's own addresses (p.node4, p.node6) have kernel local routes.
	others := []netip.Addr{
		netip.MustParseAddr("198.19.255.1"), netip.MustParseAddr("198.19.255.2"),
		netip.MustParseAddr("2001:db8:19::ff"), netip.MustParseAddr("198.19.255.3"), p.node4, p.node6,
	}
	before := localRoutes(t, h)
	k := newKernel(t, p.node)
	if got := mustList(t, k); len(got) != 0 {
		t.Fatalf("List = %v: other owners' routes listed", got)
	}
	if err := k.DeleteAll(others); err != nil {
		t.Fatalf("DeleteAll of VIPs without proxyd routes: %v", err)
	}
	for _, v := range others {
		if err := k.Delete(v); err != nil {
			t.Fatalf("Delete(%s): %v", v, err)
		}
	}
	if after := localRoutes(t, h); !maps.Equal(before, after) {
		t.Fatalf("local routes changed by deletes of VIPs proxyd had no route for:\nbefore %v\nafter  %v", before, after)
	}

	// proxyd's routes for the same addresses live beside them.
	if err := k.AddAll(others); err != nil {
		t.Fatalf("AddAll beside other owners' routes: %v", err)
	}
	if got := mustList(t, k); !slices.Equal(got, sorted(others)) {
		t.Fatalf("List = %v, want %v", got, sorted(others))
	}
	during := localRoutes(t, h)
	for dst, proto := range before {
		if during[dst] != proto {
			t.Errorf("route %s: protocol %v after proxyd's adds, was %v", dst, during[dst], proto)
		}
	}
	if err := k.DeleteAll(others); err != nil {
		t.Fatal(err)
	}
	if after := localRoutes(t, h); !maps.Equal(before, after) {
		t.Fatalf("local routes after proxyd added and deleted its own:\nbefore %v\nafter  %v", before, after)
	}

	// A foreign route holding exactly the key proxyd's would have.
	squatter := &netlink.Route{Dst: ipNet(netip.MustParsePrefix("198.19.255.4/32")), LinkIndex: lo,
		Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Scope: unix.RT_SCOPE_HOST,
		Protocol: unix.RTPROT_STATIC, Priority: RouteMetric}
	if err := h.RouteAdd(squatter); err != nil {
		t.Fatal(err)
	}
	err := k.AddAll([]netip.Addr{netip.MustParseAddr("198.19.255.4"), netip.MustParseAddr("198.19.0.1")})
	if !errors.Is(err, ErrExists) || !slices.Equal(FailedVIPs(err), []netip.Addr{netip.MustParseAddr("198.19.255.4")}) {
		t.Fatalf("AddAll with a squatted key: %v; want ErrExists for 198.19.255.4 only", err)
	}
	if got := mustList(t, k); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("198.19.0.1")}) {
		t.Fatalf("List = %v", got)
	}
}

// A restarted proxyd (a new Kernel on the same namespace) finds the routes
// the old one added.
func TestKernelAdoptsRoutesAfterRestart(t *testing.T) {
	ns := netnstest.New(t)
	vips := sorted(vipRange(300, false), vipRange(300, true))
	old, err := NewKernel(ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.AddAll(vips); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := old.List(); !errors.Is(err, errClosed) {
		t.Fatalf("List after Close: %v", err)
	}
	k := newKernel(t, ns)
	if got := mustList(t, k); !slices.Equal(got, vips) {
		t.Fatalf("the new instance lists %d VIPs, want the %d the old one added", len(got), len(vips))
	}
	if err := k.DeleteAll(vips); err != nil {
		t.Fatal(err)
	}
	if got := mustList(t, k); len(got) != 0 {
		t.Fatalf("List = %v after deleting what was adopted", got)
	}
}

// When the answers to a batch overflow the socket's receive buffer, the
// batch reports ErrOverrun and the socket stays usable.
func TestKernelOverrun(t *testing.T) {
	ns := netnstest.New(t)
	k := newKernel(t, ns)
	k.batchSize = 2000
	if err := unix.SetsockoptInt(k.sock.GetFd(), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096); err != nil {
		t.Fatal(err)
	}
	// Adds of routes that exist: 2000 EEXIST answers, far more than fit.
	vips := vipRange(2000, false)
	if err := k.AddAll(vips); err != nil {
		t.Fatalf("AddAll: %v", err)
	}
	err := k.AddAll(vips)
	if !errors.Is(err, ErrOverrun) {
		t.Fatalf("AddAll answered by 2000 failures into a 4 kB buffer: %v, want ErrOverrun", err)
	}
	if got := mustList(t, k); !slices.Equal(got, vips) {
		t.Fatalf("after the overrun List has %d VIPs, want %d", len(got), len(vips))
	}
	if err := k.DeleteAll(vips[:1000]); err != nil {
		t.Fatalf("DeleteAll after the overrun: %v", err)
	}
	if got := mustList(t, k); !slices.Equal(got, vips[1000:]) {
		t.Fatalf("List has %d VIPs, want 1000", len(got))
	}
}

// List never returns a wrong set while someone else changes the local
// table: it returns the right one or ErrInconsistentDump.
func TestKernelListUnderChurn(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "IPv4", true: "IPv6"}[v6], func(t *testing.T) {
			ns := netnstest.New(t)
			k := newKernel(t, ns)
			// Enough routes for a dump of several parts (receives).
			vips := vipRange(1500, v6)
			if err := k.AddAll(vips); err != nil {
				t.Fatal(err)
			}
			churn := netip.MustParsePrefix("198.19.255.0/24")
			if v6 {
				churn = netip.MustParsePrefix("2001:db8:0:ff::/120") // sorts before the VIPs
			}
			stop, done := make(chan struct{}), make(chan error)
			h := netnstest.Handle(t, ns)
			go func() { done <- churnLocalRoutes(h, churn, stop) }()

			const lists = 20
			var ok, inconsistent, unguardedWrong int
			for range lists {
				got, err := k.List()
				switch {
				case errors.Is(err, ErrInconsistentDump):
					inconsistent++
				case err != nil:
					t.Fatal(err)
				case !slices.Equal(got, vips):
					t.Fatalf("List under churn: %d VIPs, want %d", len(got), len(vips))
				default:
					ok++
				}
				// For the log: what the dump alone (no watch) gets.
				k.mu.Lock()
				raw, _, err := k.readDump(familyOf(vips[0]))
				k.mu.Unlock()
				if err == nil && !slices.Equal(sorted(raw), vips) {
					unguardedWrong++
				}
			}
			close(stop)
			if err := <-done; err != nil {
				t.Fatalf("churn: %v", err)
			}
			if got := mustList(t, k); !slices.Equal(got, vips) {
				t.Fatalf("List after churn: %d VIPs, want %d", len(got), len(vips))
			}
			t.Logf("%d Lists under churn: %d right, %d ErrInconsistentDump, none wrong; unguarded dumps wrong: %d of %d",
				lists, ok, inconsistent, unguardedWrong, lists)
		})
	}
}

// churnLocalRoutes adds and deletes local routes of another protocol in
// prefix until stop is closed.
func churnLocalRoutes(h *netlink.Handle, prefix netip.Prefix, stop <-chan struct{}) error {
	var firstErr error
	a := prefix.Addr()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return firstErr
		default:
		}
		if !prefix.Contains(a.Next()) {
			a = prefix.Addr()
		}
		a = a.Next()
		r := &netlink.Route{Dst: ipNet(netip.PrefixFrom(a, a.BitLen())), LinkIndex: 1,
			Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Scope: unix.RT_SCOPE_HOST, Protocol: unix.RTPROT_STATIC}
		err := h.RouteAdd(r)
		if err == nil {
			err = h.RouteDel(r)
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("route %s (change %d): %w", a, i, err)
		}
	}
}

// Taking lo down removes the IPv6 routes through it (the IPv4 ones stay,
// on the kernels measured); the next sync's AddAll puts them back.
func TestKernelRepairsAfterLoopbackDown(t *testing.T) {
	ns := netnstest.New(t)
	k, h := newKernel(t, ns), netnstest.Handle(t, ns)
	vips := sorted(vipRange(3, false), vipRange(3, true))
	if err := k.AddAll(vips); err != nil {
		t.Fatal(err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetDown(lo); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	t.Logf("after lo went down and up, proxyd's routes left: %v", mustList(t, k))
	if err := k.AddAll(vips); err != nil {
		t.Fatal(err)
	}
	if got := mustList(t, k); !slices.Equal(got, vips) {
		t.Fatalf("after the repair: %v, want %v", got, vips)
	}
}
