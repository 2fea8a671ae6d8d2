//go:build kernel

package routes

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// The real adapter against the kernel (address plan: netns_kernel_test.go).

func TestKernelInstallBothFamilies(t *testing.T) {
	n := newNode(t, Config{})
	// The default route too: the kernel's dump has no RTA_DST for it.
	d := Desired{Routes: []model.Route{direct(pod4(1), hop4), direct(pod4(2), hop4b), direct(pod6(1), hop6),
		direct(netip.MustParsePrefix("0.0.0.0/0"), hop4)}}
	wantResult(t, mustApply(t, n.k, d), Result{RoutesAdded: 4, Full: true, Messages: 4})
	wantInstalled(t, n.k, d.Routes)
	wantStrings(t, "kernel", routeStrings(t, n.h, dump(t, n.h, mainTable, DefaultProtocol)), []string{
		"0.0.0.0/0 via 198.18.0.2 proto 196 table 254 metric 0",
		"198.19.1.0/24 via 198.18.0.2 proto 196 table 254 metric 0",
		"198.19.2.0/24 via 198.18.0.3 proto 196 table 254 metric 0",
		"2001:2:0:1001::/64 via 2001:2::2 proto 196 table 254 metric 1024",
	})
	if got := n.k.b.bt.sends; got != 1 {
		t.Errorf("sendmsg calls = %d, want 1", got)
	}
	// Nothing changed: nothing written, nothing read; a restart
	// adopts all four.
	wantResult(t, mustApply(t, n.k, d), Result{})
	wantResult(t, mustApply(t, n.kernel(t, Config{}), d), Result{Full: true})
}

// TestKernelOwnTableAndProtocol: another protocol number and a table of
// its own (≥ 256, which only RTA_TABLE can name); the main table is
// untouched.
func TestKernelOwnTableAndProtocol(t *testing.T) {
	n := newNode(t, Config{Protocol: 99, Table: 1000})
	d := Desired{Routes: []model.Route{direct(pod4(1), hop4), direct(pod6(1), hop6)}}
	wantResult(t, mustApply(t, n.k, d), Result{RoutesAdded: 2, Full: true, Messages: 2})
	wantInstalled(t, n.k, d.Routes)
	wantStrings(t, "table 1000", routeStrings(t, n.h, dump(t, n.h, 1000, 0)), []string{
		"198.19.1.0/24 via 198.18.0.2 proto 99 table 1000 metric 0",
		"2001:2:0:1001::/64 via 2001:2::2 proto 99 table 1000 metric 1024",
	})
	if rs := dump(t, n.h, mainTable, 99); len(rs) != 0 {
		t.Fatalf("main table has %v", rs)
	}
}

// TestKernelForeignRoutesUntouched: routes of routerd's protocol in other
// tables, routes of other protocols in its table (one of them with a
// prefix routerd routes in another table) stay as they are through
// Apply, removal and Delete.
func TestKernelForeignRoutesUntouched(t *testing.T) {
	n := newNode(t, Config{})
	addRoute(t, n.h, foreign(pod4(1), hop4b, DefaultProtocol, 100)) // ours, another table
	addRoute(t, n.h, foreign(pod4(9), hop4b, unix.RTPROT_STATIC, mainTable))
	addRoute(t, n.h, foreign(pod6(9), hop6, unix.RTPROT_STATIC, mainTable))
	addRoute(t, n.h, foreign(pod4(8), hop4b, 186, mainTable)) // bgp
	before := func() []string {
		return append(routeStrings(t, n.h, dump(t, n.h, 100, 0)), routeStrings(t, n.h, dump(t, n.h, mainTable, 0))...)
	}
	want := before()

	d := Desired{Routes: []model.Route{direct(pod4(1), hop4), direct(pod6(1), hop6)}}
	wantResult(t, mustApply(t, n.k, d), Result{RoutesAdded: 2, Full: true, Messages: 2})
	wantInstalled(t, n.k, d.Routes)
	wantResult(t, mustApply(t, n.k, Desired{}), Result{RoutesRemoved: 2, Messages: 2})
	wantInstalled(t, n.k, nil)
	if got := before(); !slices.Equal(got, want) {
		t.Fatalf("routes after removal =\n%q\nwant\n%q", got, want)
	}

	mustApply(t, n.k, d)
	if err := n.k.Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantInstalled(t, n.k, nil)
	if got := before(); !slices.Equal(got, want) {
		t.Fatalf("routes after Delete =\n%q\nwant\n%q", got, want)
	}
	// After Delete the next Apply reads the kernel again.
	wantResult(t, mustApply(t, n.k, d), Result{RoutesAdded: 2, Full: true, Messages: 2})
}

// TestKernelAdoptOnRestart: a new adapter (a restarted routerd) on the
// same kernel finds its routes and writes nothing; one that wants less
// removes only the difference.
func TestKernelAdoptOnRestart(t *testing.T) {
	n := newNode(t, Config{})
	d := Desired{Routes: []model.Route{direct(pod4(1), hop4), direct(pod4(2), hop4), direct(pod6(1), hop6)}}
	mustApply(t, n.k, d)

	wantResult(t, mustApply(t, n.kernel(t, Config{}), d), Result{Full: true})
	d.Routes = d.Routes[1:]
	wantResult(t, mustApply(t, n.kernel(t, Config{}), d), Result{RoutesRemoved: 1, Full: true, Messages: 1})
	wantInstalled(t, n.k, d.Routes)
}

// TestKernelDriftRepairedAfterInvalidate: someone deletes one of routerd's
// routes, changes another, adds one with routerd's protocol and one with
// its prefix at another metric. Until Invalidate the adapter trusts what
// it wrote; then it reads and repairs all four.
func TestKernelDriftRepairedAfterInvalidate(t *testing.T) {
	n := newNode(t, Config{})
	d := Desired{Routes: []model.Route{direct(pod4(1), hop4), direct(pod4(2), hop4), direct(pod6(1), hop6)}}
	mustApply(t, n.k, d)

	if err := n.h.RouteDel(foreign(pod4(1), netip.Addr{}, DefaultProtocol, mainTable)); err != nil {
		t.Fatal(err)
	}
	if err := n.h.RouteReplace(foreign(pod4(2), hop4b, DefaultProtocol, mainTable)); err != nil {
		t.Fatal(err)
	}
	addRoute(t, n.h, foreign(pod4(7), hop4, DefaultProtocol, mainTable))
	stale := foreign(pod6(1), hop6, DefaultProtocol, mainTable)
	stale.Priority = 50
	addRoute(t, n.h, stale)

	wantResult(t, mustApply(t, n.k, d), Result{})
	n.k.Invalidate()
	wantResult(t, mustApply(t, n.k, d), Result{RoutesAdded: 1, RoutesReplaced: 1, RoutesRemoved: 2, Full: true, Messages: 4})
	wantStrings(t, "kernel", routeStrings(t, n.h, dump(t, n.h, mainTable, DefaultProtocol)), []string{
		"198.19.1.0/24 via 198.18.0.2 proto 196 table 254 metric 0",
		"198.19.2.0/24 via 198.18.0.2 proto 196 table 254 metric 0",
		"2001:2:0:1001::/64 via 2001:2::2 proto 196 table 254 metric 1024",
	})
	wantResult(t, mustApply(t, n.k, d), Result{})
}

// TestKernelNextHopChangeIsReplace: a changed next hop is one replace per
// family, in place: one route per prefix, never two.
func TestKernelNextHopChangeIsReplace(t *testing.T) {
	n := newNode(t, Config{})
	mustApply(t, n.k, Desired{Routes: []model.Route{direct(pod4(1), hop4), direct(pod6(1), hop6)}})
	hop6b := netip.MustParseAddr("2001:2::3")
	d := Desired{Routes: []model.Route{direct(pod4(1), hop4b), direct(pod6(1), hop6b)}}
	wantResult(t, mustApply(t, n.k, d), Result{RoutesReplaced: 2, Messages: 2})
	wantStrings(t, "kernel", routeStrings(t, n.h, dump(t, n.h, mainTable, DefaultProtocol)), []string{
		"198.19.1.0/24 via 198.18.0.3 proto 196 table 254 metric 0",
		"2001:2:0:1001::/64 via 2001:2::3 proto 196 table 254 metric 1024",
	})
	n.k.Invalidate()
	wantResult(t, mustApply(t, n.k, d), Result{Full: true})
}

// TestKernelBadRoutesFailAlone: bad input is skipped, a next hop on no
// connected subnet is refused by the kernel for that route alone, and
// the rest of the batch lands. The refusal leaves the cache untrusted.
func TestKernelBadRoutesFailAlone(t *testing.T) {
	n := newNode(t, Config{})
	unreachable := direct(pod4(3), netip.MustParseAddr("198.18.99.1"))
	d := Desired{Routes: []model.Route{
		direct(pod4(1), hop4),
		{Prefix: netip.Prefix{}, NextHop: hop4},            // invalid prefix
		direct(pod4(2), hop6),                              // next hop of another family
		{Prefix: pod4(4), NextHop: hop4, Tunnel: "nnip-x"}, // tunnel not desired
		unreachable,
		direct(pod6(1), hop6),
	}}
	res, err := n.k.Apply(d)
	wantResult(t, res, Result{RoutesAdded: 2, Full: true, Messages: 3})
	var re *RouteError
	if !errors.As(err, &re) {
		t.Fatalf("Apply error %v, want RouteErrors", err)
	}
	var kernel, invalid int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		switch {
		case errors.Is(e, ErrInvalid):
			invalid++
		case errors.Is(e, unix.ENETUNREACH):
			kernel++
			if !errors.As(e, &re) || re.Route != unreachable {
				t.Errorf("kernel refusal %v not about %v", e, unreachable)
			}
		default:
			t.Errorf("unexpected error %v", e)
		}
	}
	if invalid != 3 || kernel != 1 {
		t.Fatalf("errors: %d invalid, %d from the kernel; want 3 and 1: %v", invalid, kernel, err)
	}
	wantInstalled(t, n.k, []model.Route{direct(pod4(1), hop4), direct(pod6(1), hop6)})

	// The refusal made the next Apply read again; the bad input alone
	// does not.
	d.Routes = slices.DeleteFunc(d.Routes, func(r model.Route) bool { return r == unreachable })
	res, err = n.k.Apply(d)
	wantResult(t, res, Result{Full: true})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply error %v, want ErrInvalid", err)
	}
	res, _ = n.k.Apply(d)
	wantResult(t, res, Result{})
}

// TestKernelDeleteRemovesOnlyOurs: Delete removes routerd's routes (also
// ones at another metric) and nothing else.
func TestKernelDeleteRemovesOnlyOurs(t *testing.T) {
	n := newNode(t, Config{})
	addRoute(t, n.h, foreign(pod4(9), hop4b, unix.RTPROT_STATIC, mainTable))
	mustApply(t, n.k, Desired{Routes: []model.Route{direct(pod4(1), hop4), direct(pod6(1), hop6)}})
	odd := foreign(pod4(1), hop4b, DefaultProtocol, mainTable)
	odd.Priority = 10
	addRoute(t, n.h, odd)

	if err := n.kernel(t, Config{}).Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantInstalled(t, n.k, nil)
	wantStrings(t, "static", routeStrings(t, n.h, dump(t, n.h, mainTable, unix.RTPROT_STATIC)), []string{
		"198.19.9.0/24 via 198.18.0.3 proto 4 table 254 metric 0",
	})
	// Delete of nothing is fine.
	if err := n.k.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

// TestKernelBatchOf5000: 5000 routes in one Apply are one sendmsg (the
// socket buffers are sized for it) and all land.
func TestKernelBatchOf5000(t *testing.T) {
	n := newNode(t, Config{})
	d := Desired{Routes: make([]model.Route, 0, 5000)}
	for i := range 5000 {
		d.Routes = append(d.Routes, direct(netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 32), hop4))
	}
	wantResult(t, mustApply(t, n.k, d), Result{RoutesAdded: 5000, Full: true, Messages: 5000})
	t.Logf("sendmsg calls: %d (batch limits: %d bytes, %d messages)", n.k.b.bt.sends, n.k.b.bt.maxBytes, n.k.b.bt.maxMsgs)
	if got := len(dump(t, n.h, mainTable, DefaultProtocol)); got != 5000 {
		t.Fatalf("kernel has %d routes of protocol %d, want 5000", got, DefaultProtocol)
	}
	if n.k.b.bt.sends > 2 {
		t.Errorf("sendmsg calls = %d, want 1 (2 at most)", n.k.b.bt.sends)
	}
	wantResult(t, mustApply(t, n.kernel(t, Config{}), d), Result{Full: true})
	if err := n.k.Delete(); err != nil {
		t.Fatal(err)
	}
	if got := len(dump(t, n.h, mainTable, DefaultProtocol)); got != 0 {
		t.Fatalf("kernel has %d routes after Delete", got)
	}
}
