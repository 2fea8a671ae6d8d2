package routes

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Fake is an in-memory kernel behind the same reconciler as Kernel: the
// same validation, adoption, trust in what was last written, diff, order
// of writes and counts. Its kernel holds only what routerd owns (routes of
// its protocol, tunnel links) and behaves as the real one where it
// matters: a route into a tunnel needs the link there and up, a link
// deleted takes its routes with it, a delete of a missing route is fine.
// It records every write, can be changed behind routerd's back (drift) and
// can fail reads and writes on demand.
type Fake struct {
	mu sync.Mutex
	e  engine
	m  *memBackend
}

// NewFake returns a Fake with an empty kernel.
func NewFake() *Fake {
	m := &memBackend{routes: map[netip.Prefix]model.Route{}, links: map[string]*fakeLink{},
		failRoute: map[netip.Prefix]error{}, failTunnel: map[string]error{}}
	return &Fake{e: engine{b: m, cache: newState()}, m: m}
}

// Apply is part of Interface.
func (f *Fake) Apply(d Desired) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.e.apply(d)
}

// Invalidate is part of Interface.
func (f *Fake) Invalidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.e.invalidate()
}

// Installed is part of Interface.
func (f *Fake) Installed() ([]model.Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.e.installed()
}

// Delete is part of Interface.
func (f *Fake) Delete() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.e.deleteAll()
}

// Tunnels lists the fake kernel's tunnel links, sorted by name.
func (f *Fake) Tunnels() []model.Tunnel {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.Tunnel
	for _, name := range sortedKeys(f.m.links, strings.Compare) {
		out = append(out, f.m.links[name].Tunnel)
	}
	return out
}

// Writes returns the writes made since the last ResetWrites, in order, one
// line each: "add route 198.18.1.0/24 via 198.18.0.2", "delete tunnel
// nnip-c6120002", …
func (f *Fake) Writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.m.writes)
}

// Batches returns the number of route batches sent since the last
// ResetWrites.
func (f *Fake) Batches() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m.batches
}

// ResetWrites forgets the recorded writes.
func (f *Fake) ResetWrites() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m.writes, f.m.batches = nil, 0
}

// SetRoute writes r into the fake kernel as someone else would (with
// routerd's protocol), unrecorded: drift that only a read after Invalidate
// sees.
func (f *Fake) SetRoute(r model.Route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m.routes[r.Prefix] = r
}

// DelRoute deletes the route of p behind routerd's back.
func (f *Fake) DelRoute(p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m.routes, p)
}

// SetTunnel makes or changes a link behind routerd's back; up false sets
// it down, which removes its routes as the kernel does.
func (f *Fake) SetTunnel(t model.Tunnel, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.m.links[t.Name]
	if l == nil {
		f.m.index++
		l = &fakeLink{Index: f.m.index}
		f.m.links[t.Name] = l
	}
	l.Tunnel, l.Up = normTunnel(t), up
	if !up {
		f.m.dropVia(t.Name)
	}
}

// DelTunnel deletes a link (and its routes) behind routerd's back.
func (f *Fake) DelTunnel(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m.links, name)
	f.m.dropVia(name)
}

// FailRoute makes every write of a route of p fail with err (nil: no
// longer), as the kernel refuses a next hop it cannot reach.
func (f *Fake) FailRoute(p netip.Prefix, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	setOrClear(f.m.failRoute, p, err)
}

// FailTunnel makes every write of the link name fail with err (nil: no
// longer).
func (f *Fake) FailTunnel(name string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	setOrClear(f.m.failTunnel, name, err)
}

// FailRead makes reads of the kernel fail with err (nil: no longer).
func (f *Fake) FailRead(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m.failRead = err
}

func setOrClear[K comparable](m map[K]error, k K, err error) {
	if err == nil {
		delete(m, k)
		return
	}
	m[k] = err
}

type fakeLink struct {
	model.Tunnel
	Index int
	Up    bool
}

// memBackend is the Fake's kernel.
type memBackend struct {
	routes     map[netip.Prefix]model.Route
	links      map[string]*fakeLink
	index      int
	writes     []string
	batches    int
	failRoute  map[netip.Prefix]error
	failTunnel map[string]error
	failRead   error
}

func (m *memBackend) read() (state, error) {
	st := newState()
	if m.failRead != nil {
		return st, m.failRead
	}
	for name, l := range m.links {
		st.tunnels[name] = ktunnel{Tunnel: l.Tunnel, Index: l.Index, Up: l.Up, IPIP: true}
	}
	for p, r := range m.routes {
		st.routes[ownKey(p)] = kroute{Route: r}
	}
	return st, nil
}

func (m *memBackend) addTunnel(t model.Tunnel) (int, int, error) {
	m.writes = append(m.writes, "add tunnel "+tunnelString(t))
	if err := m.failTunnel[t.Name]; err != nil {
		return 0, 1, err
	}
	if _, ok := m.links[t.Name]; ok {
		return 0, 1, unix.EEXIST
	}
	m.index++
	m.links[t.Name] = &fakeLink{Tunnel: t, Index: m.index, Up: true}
	return m.index, 1, nil
}

func (m *memBackend) fixTunnel(fix tunnelFix) (int, int, error) {
	t := fix.Tunnel
	l, ok := m.links[t.Name]
	if !ok {
		return 0, 0, unix.ENODEV
	}
	if fix.Recreate {
		m.writes = append(m.writes, "delete tunnel "+t.Name)
		delete(m.links, t.Name)
		m.dropVia(t.Name)
		idx, n, err := m.addTunnel(t)
		return idx, n + 1, err
	}
	msgs := 0
	for _, change := range []struct {
		do   bool
		what string
		set  func()
	}{
		{fix.MTU, fmt.Sprintf("mtu %d", t.MTU), func() { l.MTU = t.MTU }},
		{fix.Up, "up", func() { l.Up = true }},
	} {
		if !change.do {
			continue
		}
		msgs++
		m.writes = append(m.writes, "set tunnel "+t.Name+" "+change.what)
		if err := m.failTunnel[t.Name]; err != nil {
			return 0, msgs, err
		}
		change.set()
	}
	return l.Index, msgs, nil
}

func (m *memBackend) removeTunnel(name string) (int, error) {
	if _, ok := m.links[name]; !ok {
		return 0, nil
	}
	m.writes = append(m.writes, "delete tunnel "+name)
	if err := m.failTunnel[name]; err != nil {
		return 1, err
	}
	delete(m.links, name)
	m.dropVia(name)
	return 1, nil
}

func (m *memBackend) writeRoutes(ops []routeOp) ([]error, int, error) {
	m.batches++
	errs := make([]error, len(ops))
	for i, op := range ops {
		r := op.Route
		m.writes = append(m.writes, op.Kind.String()+" route "+routeString(r))
		if err := m.failRoute[r.Prefix]; err != nil {
			errs[i] = err
			continue
		}
		if op.Kind == opDelete {
			delete(m.routes, r.Prefix)
			continue
		}
		if r.Tunnel != "" {
			l, ok := m.links[r.Tunnel]
			switch {
			case !ok || l.Index != op.OIF:
				errs[i] = unix.ENODEV
				continue
			case !l.Up:
				errs[i] = unix.ENETDOWN
				continue
			}
		}
		m.routes[r.Prefix] = r
	}
	return errs, len(ops), nil
}

func (m *memBackend) dropVia(name string) {
	for p, r := range m.routes {
		if r.Tunnel == name {
			delete(m.routes, p)
		}
	}
}

func routeString(r model.Route) string {
	if r.Tunnel == "" {
		return fmt.Sprintf("%s via %s", r.Prefix, r.NextHop)
	}
	if r.NextHop.IsValid() {
		return fmt.Sprintf("%s via %s dev %s onlink", r.Prefix, r.NextHop, r.Tunnel)
	}
	return fmt.Sprintf("%s dev %s", r.Prefix, r.Tunnel)
}

func tunnelString(t model.Tunnel) string {
	local := "any"
	if t.Local.IsValid() {
		local = t.Local.String()
	}
	return fmt.Sprintf("%s %s→%s mtu %d", t.Name, local, t.Remote, t.MTU)
}
