package routes

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// rkey is how the kernel tells routes of one table apart (for both
// families): destination and metric. The protocol is not part of it, which
// is why deletes name the protocol (the kernel then deletes only routerd's)
// and why a write replaces whatever route of the same prefix and metric
// the table holds.
type rkey struct {
	Prefix netip.Prefix
	Metric uint32
}

// ownMetric is the metric the kernel gives routerd's routes, written
// without RTA_PRIORITY: 0 for IPv4, 1024 (IP6_RT_PRIO_USER) for IPv6.
// A route of routerd's protocol with another metric was written by
// someone else and is removed.
func ownMetric(p netip.Prefix) uint32 {
	if p.Addr().Is4() {
		return 0
	}
	return 1024
}

func ownKey(p netip.Prefix) rkey { return rkey{p, ownMetric(p)} }

// kroute is a route of routerd's protocol as the kernel holds it.
type kroute struct {
	model.Route
	// odd says the kernel's route has a shape routerd never writes
	// (another type, multipath, a gateway without onlink through a
	// tunnel, …): it is rewritten even when Route equals the desired one.
	odd bool
}

// ktunnel is a link named with model.TunnelPrefix as the kernel holds it.
type ktunnel struct {
	model.Tunnel
	Index int
	Up    bool
	// IPIP says the link is an IPIP tunnel; any other kind of link with
	// routerd's prefix is re-created (or removed).
	IPIP bool
}

// state is what routerd owns in the kernel: read by a full read, then
// kept as the adapter writes.
type state struct {
	routes  map[rkey]kroute
	tunnels map[string]ktunnel
}

func newState() state {
	return state{routes: map[rkey]kroute{}, tunnels: map[string]ktunnel{}}
}

// wanted is Desired validated and indexed.
type wanted struct {
	routes  map[netip.Prefix]model.Route
	tunnels map[string]model.Tunnel
}

// validate keeps the entries of d the kernel can hold and reports the
// others (ErrInvalid); it normalises addresses (an unspecified tunnel
// Local is "any").
func validate(d Desired) (wanted, []error) {
	var w wanted
	errs := w.fill(d)
	return w, errs
}

// fill is validate into w, whose maps are cleared and reused: an Apply
// with 5k routes then allocates nothing for them.
func (w *wanted) fill(d Desired) []error {
	if w.routes == nil {
		w.routes, w.tunnels = make(map[netip.Prefix]model.Route, len(d.Routes)), make(map[string]model.Tunnel, len(d.Tunnels))
	}
	clear(w.routes)
	clear(w.tunnels)
	var errs []error
	for _, t := range d.Tunnels {
		t = normTunnel(t)
		if err := checkTunnel(t); err != nil {
			errs = append(errs, &TunnelError{Name: t.Name, Err: fmt.Errorf("%w: %v", ErrInvalid, err)})
			continue
		}
		if prev, dup := w.tunnels[t.Name]; dup {
			if prev != t {
				errs = append(errs, &TunnelError{Name: t.Name, Err: fmt.Errorf("%w: desired twice (%s and %s)", ErrInvalid, tunnelString(prev), tunnelString(t))})
			}
			continue
		}
		w.tunnels[t.Name] = t
	}
	for _, r := range d.Routes {
		if err := checkRoute(r, w.tunnels); err != nil {
			errs = append(errs, &RouteError{Route: r, Err: fmt.Errorf("%w: %v", ErrInvalid, err)})
			continue
		}
		if prev, dup := w.routes[r.Prefix]; dup {
			if prev != r {
				errs = append(errs, &RouteError{Route: r, Err: fmt.Errorf("%w: prefix desired twice (also %s)", ErrInvalid, prev)})
			}
			continue
		}
		w.routes[r.Prefix] = r
	}
	return errs
}

func normTunnel(t model.Tunnel) model.Tunnel {
	if t.Local.IsValid() && t.Local.Unmap().IsUnspecified() {
		t.Local = netip.Addr{}
	}
	t.Local, t.Remote = t.Local.Unmap(), t.Remote.Unmap()
	return t
}

func checkTunnel(t model.Tunnel) error {
	switch {
	case !strings.HasPrefix(t.Name, model.TunnelPrefix):
		// A link without the prefix would never be recognised as
		// routerd's again, so never removed.
		return fmt.Errorf("name without the prefix %q", model.TunnelPrefix)
	case len(t.Name) > 15:
		return fmt.Errorf("name longer than the kernel's 15 bytes")
	case !t.Remote.Is4() || t.Remote.IsUnspecified():
		return fmt.Errorf("remote %v is not an IPv4 address (IPIP is IPv4 only)", t.Remote)
	case t.Local.IsValid() && !t.Local.Is4():
		return fmt.Errorf("local %v is not an IPv4 address", t.Local)
	case t.MTU < 0 || t.MTU > 65535:
		return fmt.Errorf("MTU %d out of range", t.MTU)
	}
	return nil
}

func checkRoute(r model.Route, tunnels map[string]model.Tunnel) error {
	p := r.Prefix
	switch {
	case !p.IsValid():
		return fmt.Errorf("invalid prefix")
	case p.Addr().Is4In6():
		return fmt.Errorf("IPv4-mapped prefix")
	case p != p.Masked():
		// The kernel refuses host bits for IPv4; never guess which
		// prefix was meant.
		return fmt.Errorf("host bits set (%s)", p.Masked())
	case r.NextHop.IsValid() && r.NextHop.Is4() != p.Addr().Is4():
		return fmt.Errorf("next hop %s of another family", r.NextHop)
	case r.NextHop.IsValid() && (r.NextHop.IsUnspecified() || r.NextHop.IsMulticast()):
		return fmt.Errorf("next hop %s is not a unicast address", r.NextHop)
	case r.NextHop.Zone() != "":
		return fmt.Errorf("next hop with a zone")
	}
	if r.Tunnel == "" {
		if !r.NextHop.IsValid() {
			return fmt.Errorf("no next hop and no tunnel")
		}
		return nil
	}
	if !p.Addr().Is4() {
		return fmt.Errorf("IPv6 into an IPIP tunnel")
	}
	if _, ok := tunnels[r.Tunnel]; !ok {
		return fmt.Errorf("tunnel %s is not desired", r.Tunnel)
	}
	return nil
}

// opKind is what a route message does.
type opKind uint8

const (
	opAdd opKind = iota + 1
	opReplace
	opDelete
)

func (k opKind) String() string {
	switch k {
	case opAdd:
		return "add"
	case opReplace:
		return "replace"
	case opDelete:
		return "delete"
	}
	return fmt.Sprintf("opKind(%d)", uint8(k))
}

// routeOp is one route message. Adds and replaces are both written with
// NLM_F_CREATE|NLM_F_REPLACE (an add that meets a route nobody told us
// about still lands); the kinds differ for the counts.
type routeOp struct {
	Kind  opKind
	Route model.Route
	// Metric is the route's metric for deletes (0 for writes: the
	// kernel's default).
	Metric uint32
	// OIF is the tunnel link's index for writes into a tunnel, set just
	// before sending.
	OIF int
}

// tunnelFix is how a desired tunnel that exists differs from it.
type tunnelFix struct {
	Tunnel model.Tunnel
	// Recreate: another kind of link, or other endpoints. The link is
	// deleted and made again (its routes go with it and are rewritten):
	// simpler than IFLA changes, which the kernel refuses for some of
	// these (p2p ↔ NBMA), and rare.
	Recreate bool
	MTU      bool
	Up       bool
}

// plan is the work of one Apply, in the order it is done: tunnels made
// and fixed first (routes into them need the link up), routes written and
// deleted in one batch, then the tunnels nobody wants removed (after the
// routes through them).
type plan struct {
	AddTunnels    []model.Tunnel
	FixTunnels    []tunnelFix
	Routes        []routeOp
	RemoveTunnels []string
}

// diff computes the plan that turns have into w. It is pure.
func diff(w wanted, have state) plan {
	var p plan
	// Links re-created take their routes with them: those are added
	// again, not replaced, and not deleted.
	gone := map[string]bool{}
	for _, name := range sortedKeys(w.tunnels, strings.Compare) {
		t := w.tunnels[name]
		k, ok := have.tunnels[name]
		if !ok {
			p.AddTunnels = append(p.AddTunnels, t)
			continue
		}
		fix := tunnelFix{Tunnel: t}
		switch {
		case !k.IPIP || k.Local != t.Local || k.Remote != t.Remote:
			fix.Recreate = true
			gone[name] = true
		default:
			fix.MTU = t.MTU != 0 && k.MTU != t.MTU
			fix.Up = !k.Up
		}
		if fix.Recreate || fix.MTU || fix.Up {
			p.FixTunnels = append(p.FixTunnels, fix)
		}
	}
	for _, name := range sortedKeys(have.tunnels, strings.Compare) {
		if _, ok := w.tunnels[name]; !ok {
			p.RemoveTunnels = append(p.RemoveTunnels, name)
		}
	}

	// Writes before deletes: a route that moves from one shape to
	// another is replaced in place, and stale routes go last. The maps
	// are walked unsorted and only the operations sorted (for stable
	// batches and tests): an Apply that changes one route of 5k sorts one.
	var writes, deletes []routeOp
	matched := 0 // routes of have that are desired
	for pfx, r := range w.routes {
		k, ok := have.routes[ownKey(pfx)]
		switch {
		case !ok || (k.Tunnel != "" && gone[k.Tunnel]):
			writes = append(writes, routeOp{Kind: opAdd, Route: r})
			continue
		case k.Route != r || k.odd:
			writes = append(writes, routeOp{Kind: opReplace, Route: r})
		}
		matched++
	}
	for key, k := range have.routes {
		if matched == len(have.routes) {
			break // all desired: nothing to delete (the common case)
		}
		if k.Tunnel != "" && gone[k.Tunnel] {
			continue
		}
		if _, ok := w.routes[key.Prefix]; ok && key.Metric == ownMetric(key.Prefix) {
			continue
		}
		deletes = append(deletes, routeOp{Kind: opDelete, Route: k.Route, Metric: key.Metric})
	}
	slices.SortFunc(writes, compareOp)
	slices.SortFunc(deletes, compareOp)
	p.Routes = append(writes, deletes...)
	return p
}

// empty says there is nothing to write.
func (p plan) empty() bool {
	return len(p.AddTunnels) == 0 && len(p.FixTunnels) == 0 && len(p.Routes) == 0 && len(p.RemoveTunnels) == 0
}

func compareOp(a, b routeOp) int {
	return compareKey(rkey{a.Route.Prefix, a.Metric}, rkey{b.Route.Prefix, b.Metric})
}

func compareKey(a, b rkey) int {
	if c := model.ComparePrefix(a.Prefix, b.Prefix); c != 0 {
		return c
	}
	return cmp.Compare(a.Metric, b.Metric)
}

func sortedKeys[K comparable, V any](m map[K]V, cmp func(a, b K) int) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp)
	return keys
}

// routesOf lists the routes of s, sorted by prefix (then metric).
func routesOf(s state) []model.Route {
	out := make([]model.Route, 0, len(s.routes))
	for _, key := range sortedKeys(s.routes, compareKey) {
		out = append(out, s.routes[key].Route)
	}
	return out
}
