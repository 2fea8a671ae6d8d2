package routes

import (
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// The fast path of Apply. Desired is the complete set every time, so even
// a trusted Apply that changes one route of 5k has to look at all of them:
// through the maps of validate and diff that costs ~0.7 ms (5k hash
// lookups with cache misses). The reconciler builds Desired the same way
// every time (same order), so comparing it with the last one position by
// position (a sequential scan, ~20 µs for 5k) finds the few routes that
// changed; only those are validated and diffed. Anything unusual takes
// the full path: the cache not trusted, tunnels changed, a length change,
// bad input now or last time (duplicates make the bookkeeping ambiguous).

// lastDesired is the Desired of the last Apply.
type lastDesired struct {
	routes  []model.Route
	tunnels []model.Tunnel
	// clean says it was valid and free of duplicates, so want holds each
	// of its routes exactly once.
	clean bool
}

func (l *lastDesired) remember(d Desired, clean bool) {
	l.routes = append(l.routes[:0], d.Routes...)
	l.tunnels = append(l.tunnels[:0], d.Tunnels...)
	l.clean = clean
}

// fastPlan returns the plan of d when the fast path applies (ok), updating
// e.want; the plan is the one diff would compute.
func (e *engine) fastPlan(d Desired) (p plan, errs []error, ok bool) {
	l := &e.last
	if !e.trusted || !l.clean || len(d.Routes) != len(l.routes) || !slices.Equal(d.Tunnels, l.tunnels) {
		return p, nil, false
	}
	// Positions that changed: a trusted cache already matches the rest
	// (the last Apply left the kernel as it wanted, or the cache would
	// not be trusted).
	var changed []int
	for i := range d.Routes {
		if d.Routes[i] != l.routes[i] {
			changed = append(changed, i)
			if len(changed) > len(d.Routes)/8 {
				return p, nil, false // many changes: the maps are as cheap
			}
		}
	}
	for _, i := range changed {
		if checkRoute(d.Routes[i], e.want.tunnels) != nil {
			return p, nil, false // the full path reports it
		}
	}
	// Every prefix of the last Desired was in want once: take the old
	// ones out, put the new ones in; a new one already there is a
	// duplicate, left to the full path (which rebuilds want).
	affected := make(map[netip.Prefix]bool, 2*len(changed))
	for _, i := range changed {
		delete(e.want.routes, l.routes[i].Prefix)
		affected[l.routes[i].Prefix] = true
	}
	for _, i := range changed {
		r := d.Routes[i]
		if _, dup := e.want.routes[r.Prefix]; dup {
			return p, nil, false
		}
		e.want.routes[r.Prefix] = r
		affected[r.Prefix] = true
	}
	var writes, deletes []routeOp
	for pfx := range affected {
		r, want := e.want.routes[pfx]
		k, have := e.cache.routes[ownKey(pfx)]
		switch {
		case want && !have:
			writes = append(writes, routeOp{Kind: opAdd, Route: r})
		case want && (k.Route != r || k.odd):
			writes = append(writes, routeOp{Kind: opReplace, Route: r})
		case !want && have:
			deletes = append(deletes, routeOp{Kind: opDelete, Route: k.Route, Metric: ownMetric(pfx)})
		}
	}
	slices.SortFunc(writes, compareOp)
	slices.SortFunc(deletes, compareOp)
	p.Routes = append(writes, deletes...)
	return p, nil, true
}
