package routes

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// TestFastPathAgreesWithTheFullDiff drives the Fake through random
// changes of a Desired (next hops, prefixes, tunnel routes, reordering,
// growth, duplicates, bad entries, drift and Invalidate) and checks after
// every Apply that its kernel holds exactly the valid desired routes, as
// the full diff would leave it, whichever path the Apply took.
func TestFastPathAgreesWithTheFullDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a := tun("198.18.1.2")
	hops := []netip.Addr{addr("198.18.0.2"), addr("198.18.0.3"), addr("198.18.0.4")}
	route := func() model.Route {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(rng.IntN(4)), byte(rng.IntN(256))}), 32)
		if rng.IntN(5) == 0 {
			return model.Route{Prefix: p, NextHop: a.Remote, Tunnel: a.Name}
		}
		return model.Route{Prefix: p, NextHop: hops[rng.IntN(len(hops))]}
	}
	d := Desired{Tunnels: []model.Tunnel{a}}
	for len(d.Routes) < 300 {
		r := route()
		if !slices.ContainsFunc(d.Routes, func(o model.Route) bool { return o.Prefix == r.Prefix }) {
			d.Routes = append(d.Routes, r)
		}
	}
	f := NewFake()
	fastChanges := 0 // steps that changed routes through the fast path
	for step := range 800 {
		i := rng.IntN(len(d.Routes))
		switch op := rng.IntN(100); {
		case op < 50: // another next hop
			d.Routes[i].NextHop, d.Routes[i].Tunnel = hops[rng.IntN(len(hops))], ""
		case op < 70: // another route at this position (maybe a duplicate)
			d.Routes[i] = route()
		case op < 75: // reordered
			j := rng.IntN(len(d.Routes))
			d.Routes[i], d.Routes[j] = d.Routes[j], d.Routes[i]
		case op < 80: // grown or shrunk
			if rng.IntN(2) == 0 {
				d.Routes = append(d.Routes, route())
			} else {
				d.Routes = slices.Delete(d.Routes, i, i+1)
			}
		case op < 83: // bad entry
			d.Routes[i].Prefix = netip.PrefixFrom(d.Routes[i].Prefix.Addr(), 33)
		case op < 86: // drift, unseen until Invalidate
			f.SetRoute(route())
		case op < 88:
			f.Invalidate()
		case op < 90: // tunnels change
			if len(d.Tunnels) == 1 {
				d.Tunnels = append(d.Tunnels, tun("198.18.2.2"))
			} else {
				d.Tunnels = d.Tunnels[:1]
			}
		case op < 95: // bad entries and duplicates fixed
			seen := map[netip.Prefix]bool{}
			d.Routes = slices.DeleteFunc(d.Routes, func(r model.Route) bool {
				bad := !r.Prefix.IsValid() || seen[r.Prefix]
				seen[r.Prefix] = true
				return bad
			})
		}
		fast := f.e.fast
		res, _ := f.Apply(d)
		if f.e.fast > fast && res.Messages > 0 {
			fastChanges++
		}
		w, _ := validate(d)
		want := make([]model.Route, 0, len(w.routes))
		for _, p := range sortedKeys(w.routes, model.ComparePrefix) {
			want = append(want, w.routes[p])
		}
		// Drift is only repaired by a read: compare what routerd
		// believes with what it wanted, and the kernel only after a
		// read.
		if got := routesOf(f.e.cache); !slices.Equal(got, want) {
			t.Fatalf("step %d (fast path %v): cache\n%v\nwant\n%v", step, f.e.fast > fast, got, want)
		}
		f.Invalidate()
		if _, _ = f.Apply(d); !slices.Equal(routesOf(f.e.cache), want) {
			t.Fatalf("step %d: after a read\n%v\nwant\n%v", step, routesOf(f.e.cache), want)
		}
		got, _ := f.Installed()
		if !slices.Equal(got, want) {
			t.Fatalf("step %d: kernel\n%v\nwant\n%v", step, got, want)
		}
		_, _ = f.Apply(d) // trusted again, same Desired: the next step may go fast
	}
	t.Logf("fast path taken %d times, %d of them with changes", f.e.fast, fastChanges)
	if fastChanges < 100 {
		t.Fatalf("fast path wrote changes %d times only", fastChanges)
	}
}
