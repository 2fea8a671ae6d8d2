package routes

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// backend is the kernel under the engine: netlink for Kernel, memory for
// Fake. Each write method reports how many requests it sent.
type backend interface {
	// read returns what routerd owns in the kernel now.
	read() (state, error)
	// addTunnel makes the link, up, and returns its index.
	addTunnel(t model.Tunnel) (index, msgs int, err error)
	// fixTunnel makes the existing link as fix says and returns its
	// (possibly new) index.
	fixTunnel(fix tunnelFix) (index, msgs int, err error)
	// removeTunnel deletes the link (routes through it go with it).
	removeTunnel(name string) (msgs int, err error)
	// writeRoutes sends ops as one batch; errs[i] is the outcome of
	// ops[i] (nil: done), errNoAck when it is unknown because the batch
	// failed as a whole, which err then says.
	writeRoutes(ops []routeOp) (errs []error, msgs int, err error)
}

// engine is the reconciler shared by Kernel and Fake: validation, the
// trust in its cache, the diff and the order of the writes. Its callers
// hold a lock.
type engine struct {
	b     backend
	cache state
	// trusted says cache is what the kernel holds: set by a full read
	// and kept while every write succeeds.
	trusted bool
	// want is the validated Desired, its maps reused by every Apply.
	want wanted
	// last is the Desired of the last Apply, for the fast path.
	last lastDesired
	// fast counts the Applies that took the fast path (for tests).
	fast int
}

func (e *engine) apply(d Desired) (Result, error) {
	var res Result
	p, errs, ok := e.fastPlan(d)
	if ok {
		e.fast++
	} else {
		errs = e.want.fill(d)
		if !e.trusted {
			st, err := e.b.read()
			if err != nil {
				return res, errors.Join(append(errs, fmt.Errorf("read the kernel: %w", err))...)
			}
			e.cache, e.trusted, res.Full = st, true, true
		}
		p = diff(e.want, e.cache)
	}
	e.last.remember(d, len(errs) == 0)
	if p.empty() {
		return res, errors.Join(errs...)
	}
	// Any failed write leaves the cache untrusted: the kernel may hold
	// something else than planned, and the next Apply reads it.
	failed := false
	fail := func(err error) {
		errs = append(errs, err)
		failed = true
	}

	for _, t := range p.AddTunnels {
		idx, n, err := e.b.addTunnel(t)
		res.Messages += n
		if err != nil {
			fail(&TunnelError{Name: t.Name, Err: err})
			continue
		}
		e.cache.tunnels[t.Name] = ktunnel{Tunnel: t, Index: idx, Up: true, IPIP: true}
		res.TunnelsAdded++
	}
	for _, fix := range p.FixTunnels {
		name := fix.Tunnel.Name
		if fix.Recreate {
			e.dropRoutesVia(name)
		}
		idx, n, err := e.b.fixTunnel(fix)
		res.Messages += n
		if err != nil {
			delete(e.cache.tunnels, name)
			fail(&TunnelError{Name: name, Err: err})
			continue
		}
		t := fix.Tunnel
		if t.MTU == 0 && !fix.Recreate {
			t.MTU = e.cache.tunnels[name].MTU
		}
		e.cache.tunnels[name] = ktunnel{Tunnel: t, Index: idx, Up: true, IPIP: true}
		res.TunnelsChanged++
	}

	// Routes into a tunnel need its index, and the link up (the kernel
	// refuses onlink next hops on a link that is down).
	ops := make([]routeOp, 0, len(p.Routes))
	for _, op := range p.Routes {
		if op.Kind != opDelete && op.Route.Tunnel != "" {
			t, ok := e.cache.tunnels[op.Route.Tunnel]
			if !ok {
				fail(&RouteError{Route: op.Route, Err: fmt.Errorf("tunnel %s is not there", op.Route.Tunnel)})
				continue
			}
			op.OIF = t.Index
		}
		ops = append(ops, op)
	}
	if len(ops) > 0 {
		rerrs, n, err := e.b.writeRoutes(ops)
		res.Messages += n
		if err != nil {
			fail(fmt.Errorf("route batch of %d: %w", len(ops), err))
		}
		for i, op := range ops {
			switch {
			case rerrs[i] == nil:
				e.record(op, &res)
			case errors.Is(rerrs[i], errNoAck):
				failed = true // reported once, with the batch
			default:
				fail(&RouteError{Route: op.Route, Err: rerrs[i]})
			}
		}
	}

	for _, name := range p.RemoveTunnels {
		n, err := e.b.removeTunnel(name)
		res.Messages += n
		if err != nil {
			fail(&TunnelError{Name: name, Err: err})
			continue
		}
		delete(e.cache.tunnels, name)
		e.dropRoutesVia(name)
		res.TunnelsRemoved++
	}
	if failed {
		e.trusted = false
	}
	return res, errors.Join(errs...)
}

// record notes a route write the kernel acknowledged.
func (e *engine) record(op routeOp, res *Result) {
	switch op.Kind {
	case opDelete:
		delete(e.cache.routes, rkey{op.Route.Prefix, op.Metric})
		res.RoutesRemoved++
	case opAdd:
		e.cache.routes[ownKey(op.Route.Prefix)] = kroute{Route: op.Route}
		res.RoutesAdded++
	case opReplace:
		e.cache.routes[ownKey(op.Route.Prefix)] = kroute{Route: op.Route}
		res.RoutesReplaced++
	}
}

// dropRoutesVia forgets the routes through a link that is deleted: the
// kernel removes them with it.
func (e *engine) dropRoutesVia(name string) {
	for k, r := range e.cache.routes {
		if r.Tunnel == name {
			delete(e.cache.routes, k)
		}
	}
}

func (e *engine) invalidate() { e.trusted = false }

// errNoAck is the outcome of a route message whose acknowledgement never
// came (the batch failed as a whole): it may or may not have been applied.
var errNoAck = errors.New("no acknowledgement")

func (e *engine) installed() ([]model.Route, error) {
	st, err := e.b.read()
	if err != nil {
		return nil, err
	}
	return routesOf(st), nil
}

// deleteAll removes every route and tunnel routerd owns: the routes in one
// batch first, then the links.
func (e *engine) deleteAll() error {
	// Whatever happens, the next Apply reads the kernel again.
	e.trusted = false
	st, err := e.b.read()
	if err != nil {
		return fmt.Errorf("read the kernel: %w", err)
	}
	var errs []error
	ops := make([]routeOp, 0, len(st.routes))
	for _, key := range sortedKeys(st.routes, compareKey) {
		ops = append(ops, routeOp{Kind: opDelete, Route: st.routes[key].Route, Metric: key.Metric})
	}
	if len(ops) > 0 {
		rerrs, _, err := e.b.writeRoutes(ops)
		if err != nil {
			errs = append(errs, fmt.Errorf("route batch of %d: %w", len(ops), err))
		}
		for i, err := range rerrs {
			if err != nil && !errors.Is(err, errNoAck) {
				errs = append(errs, &RouteError{Route: ops[i].Route, Err: err})
			}
		}
	}
	for _, name := range sortedKeys(st.tunnels, strings.Compare) {
		if _, err := e.b.removeTunnel(name); err != nil {
			errs = append(errs, &TunnelError{Name: name, Err: err})
		}
	}
	return errors.Join(errs...)
}
