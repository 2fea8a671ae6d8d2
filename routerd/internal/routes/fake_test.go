package routes

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// The Fake runs the same reconciler as Kernel over an in-memory kernel:
// these tests are the engine's (adoption, trust, order of writes, errors)
// as much as the Fake's.

func wantWrites(tb testing.TB, f *Fake, want ...string) {
	tb.Helper()
	if got := f.Writes(); !slices.Equal(got, want) {
		tb.Fatalf("writes =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	f.ResetWrites()
}

func fakeApply(tb testing.TB, f *Fake, d Desired, want Result) {
	tb.Helper()
	res, err := f.Apply(d)
	if err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	wantResult(tb, res, want)
}

func TestFakeOrderOfWrites(t *testing.T) {
	f := NewFake()
	a, b := tun("198.18.1.2"), tun("198.18.2.2")
	d := Desired{
		Routes:  []model.Route{viaTunnel("198.19.1.0/24", "198.18.1.2"), viaTunnel("198.19.2.0/24", "198.18.2.2"), via("198.19.3.0/24", "198.18.0.2")},
		Tunnels: []model.Tunnel{b, a},
	}
	fakeApply(t, f, d, Result{RoutesAdded: 3, TunnelsAdded: 2, Full: true, Messages: 5})
	wantWrites(t, f,
		"add tunnel nnip-c6120102 198.18.0.1→198.18.1.2 mtu 1480",
		"add tunnel nnip-c6120202 198.18.0.1→198.18.2.2 mtu 1480",
		"add route 198.19.1.0/24 via 198.18.1.2 dev nnip-c6120102 onlink",
		"add route 198.19.2.0/24 via 198.18.2.2 dev nnip-c6120202 onlink",
		"add route 198.19.3.0/24 via 198.18.0.2",
	)
	if f.Batches() != 0 { // reset
		t.Fatalf("batches not reset")
	}

	// Node b gone: its route, then its tunnel.
	d = Desired{Routes: d.Routes[:1], Tunnels: []model.Tunnel{a}}
	fakeApply(t, f, d, Result{RoutesRemoved: 2, TunnelsRemoved: 1, Messages: 3})
	wantWrites(t, f,
		"delete route 198.19.2.0/24 via 198.18.2.2 dev nnip-c6120202 onlink",
		"delete route 198.19.3.0/24 via 198.18.0.2",
		"delete tunnel nnip-c6120202",
	)
	wantInstalled(t, f, d.Routes)
	if got := f.Tunnels(); !slices.Equal(got, []model.Tunnel{a}) {
		t.Fatalf("tunnels %v", got)
	}
	fakeApply(t, f, d, Result{})
	wantWrites(t, f)
}

func TestFakeTunnelRepairs(t *testing.T) {
	f := NewFake()
	a := tun("198.18.1.2")
	d := Desired{Routes: []model.Route{viaTunnel("198.19.1.0/24", "198.18.1.2")}, Tunnels: []model.Tunnel{a}}
	fakeApply(t, f, d, Result{RoutesAdded: 1, TunnelsAdded: 1, Full: true, Messages: 2})
	f.ResetWrites()

	// Someone sets the link down (the kernel drops its routes) and
	// changes its MTU: fixed in place, the route written again.
	f.SetTunnel(model.Tunnel{Name: a.Name, Local: a.Local, Remote: a.Remote, MTU: 1400}, false)
	fakeApply(t, f, d, Result{}) // trusted until Invalidate
	f.Invalidate()
	fakeApply(t, f, d, Result{RoutesAdded: 1, TunnelsChanged: 1, Full: true, Messages: 3})
	wantWrites(t, f, "set tunnel nnip-c6120102 mtu 1480", "set tunnel nnip-c6120102 up",
		"add route 198.19.1.0/24 via 198.18.1.2 dev nnip-c6120102 onlink")

	// Desired endpoints change: re-created, route written again.
	d.Tunnels[0].Local = addr("198.18.0.9")
	fakeApply(t, f, d, Result{RoutesAdded: 1, TunnelsChanged: 1, Messages: 3})
	wantWrites(t, f, "delete tunnel nnip-c6120102", "add tunnel nnip-c6120102 198.18.0.9→198.18.1.2 mtu 1480",
		"add route 198.19.1.0/24 via 198.18.1.2 dev nnip-c6120102 onlink")
	wantInstalled(t, f, d.Routes)

	// Someone deletes the link: after Invalidate, made again.
	f.DelTunnel(a.Name)
	f.Invalidate()
	fakeApply(t, f, d, Result{RoutesAdded: 1, TunnelsAdded: 1, Full: true, Messages: 2})
}

func TestFakeAdoptsAndRepairsDrift(t *testing.T) {
	f := NewFake()
	d := Desired{Routes: []model.Route{via("198.19.1.0/24", "198.18.0.2"), via("2001:2:0:1001::/64", "2001:2::2")}}
	fakeApply(t, f, d, Result{RoutesAdded: 2, Full: true, Messages: 2})

	f.DelRoute(pfx("198.19.1.0/24"))
	f.SetRoute(via("2001:2:0:1001::/64", "2001:2::3"))
	f.SetRoute(via("198.19.9.0/24", "198.18.0.2"))
	fakeApply(t, f, d, Result{})
	f.Invalidate()
	fakeApply(t, f, d, Result{RoutesAdded: 1, RoutesReplaced: 1, RoutesRemoved: 1, Full: true, Messages: 3})
	wantInstalled(t, f, d.Routes)
	if f.Batches() != 2 {
		t.Fatalf("%d route batches, want 2 (one per Apply that wrote routes)", f.Batches())
	}
}

// TestFakeErrors: a refused route fails alone and leaves the cache
// untrusted (the next Apply reads, and retries it); a failed tunnel skips
// the routes into it; a failed read writes nothing.
func TestFakeErrors(t *testing.T) {
	f := NewFake()
	a := tun("198.18.1.2")
	d := Desired{
		Routes:  []model.Route{via("198.19.1.0/24", "198.18.0.2"), via("198.19.2.0/24", "198.18.99.1"), viaTunnel("198.19.3.0/24", "198.18.1.2")},
		Tunnels: []model.Tunnel{a},
	}
	f.FailRoute(pfx("198.19.2.0/24"), unix.ENETUNREACH)
	f.FailTunnel(a.Name, unix.EPERM)
	res, err := f.Apply(d)
	wantResult(t, res, Result{RoutesAdded: 1, Full: true, Messages: 3})
	var re *RouteError
	var te *TunnelError
	if !errors.Is(err, unix.ENETUNREACH) || !errors.Is(err, unix.EPERM) || !errors.As(err, &re) || !errors.As(err, &te) {
		t.Fatalf("Apply error: %v", err)
	}
	if !strings.Contains(err.Error(), "198.19.3.0/24") {
		t.Fatalf("the route into the failed tunnel is not reported: %v", err)
	}
	wantInstalled(t, f, d.Routes[:1])

	f.FailRoute(pfx("198.19.2.0/24"), nil)
	f.FailTunnel(a.Name, nil)
	f.ResetWrites()
	fakeApply(t, f, d, Result{RoutesAdded: 2, TunnelsAdded: 1, Full: true, Messages: 3})
	wantInstalled(t, f, d.Routes)

	f.FailRead(unix.EBUSY)
	f.Invalidate()
	f.ResetWrites()
	if _, err := f.Apply(Desired{}); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("Apply with a failed read: %v", err)
	}
	wantWrites(t, f)
	if _, err := f.Installed(); !errors.Is(err, unix.EBUSY) {
		t.Fatalf("Installed with a failed read: %v", err)
	}
	f.FailRead(nil)
	wantInstalled(t, f, d.Routes)
}

// TestFakeBadInputKeepsTrust: a persistently bad route is reported on
// every Apply but does not make every Apply read the kernel.
func TestFakeBadInputKeepsTrust(t *testing.T) {
	f := NewFake()
	d := Desired{Routes: []model.Route{via("198.19.1.0/24", "198.18.0.2"), via("198.19.2.1/24", "198.18.0.2")}}
	for i, full := range []bool{true, false} {
		res, err := f.Apply(d)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("Apply %d: %v", i, err)
		}
		if res.Full != full {
			t.Fatalf("Apply %d: Full %v", i, res.Full)
		}
	}
	wantInstalled(t, f, d.Routes[:1])
}

func TestFakeDelete(t *testing.T) {
	f := NewFake()
	a := tun("198.18.1.2")
	d := Desired{Routes: []model.Route{viaTunnel("198.19.1.0/24", "198.18.1.2"), via("198.19.2.0/24", "198.18.0.2")}, Tunnels: []model.Tunnel{a}}
	fakeApply(t, f, d, Result{RoutesAdded: 2, TunnelsAdded: 1, Full: true, Messages: 3})
	f.ResetWrites()
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	wantWrites(t, f,
		"delete route 198.19.1.0/24 via 198.18.1.2 dev nnip-c6120102 onlink",
		"delete route 198.19.2.0/24 via 198.18.0.2",
		"delete tunnel nnip-c6120102")
	wantInstalled(t, f, nil)
	if len(f.Tunnels()) != 0 {
		t.Fatalf("tunnels left: %v", f.Tunnels())
	}
	// The next Apply reads again and writes everything.
	fakeApply(t, f, d, Result{RoutesAdded: 2, TunnelsAdded: 1, Full: true, Messages: 3})
}
