package policy

import "slices"

// Selector picks peers of a matrix (pods, the world client) for an
// Expectation. It is a plain predicate; the helpers below cover the cases.
type Selector func(Peer) bool

// Anyone selects every pod and the world client.
func Anyone() Selector { return func(p Peer) bool { return p.IsPod() || p.Kind == WorldPeer } }

// AllPods selects every pod.
func AllPods() Selector { return Peer.IsPod }

// PodsIn selects the pods of the namespaces.
func PodsIn(namespaces ...string) Selector {
	return func(p Peer) bool { return p.IsPod() && slices.Contains(namespaces, p.Namespace) }
}

// PodsNamed selects the pods of these names, in every namespace.
func PodsNamed(names ...string) Selector {
	return func(p Peer) bool { return p.IsPod() && slices.Contains(names, p.Name) }
}

// Pods selects exactly these peers.
func Pods(peers ...Peer) Selector { return func(p Peer) bool { return slices.Contains(peers, p) } }

// TheWorld selects the client outside the cluster.
func TheWorld() Selector { return func(p Peer) bool { return p.Kind == WorldPeer } }

// Either selects what any of sels selects.
func Either(sels ...Selector) Selector {
	return func(p Peer) bool {
		for _, s := range sels {
			if s(p) {
				return true
			}
		}
		return false
	}
}

// Cell is one probe of a matrix: from a source to a destination on a port.
type Cell struct {
	From, To Peer
	Port     Port
}

func (c Cell) String() string {
	return c.From.String() + " → " + c.To.String() + " " + c.Port.String()
}

// Expectation is a hand-written truth table, built the way NetworkPolicy
// works so that the order of the calls does not matter: a pod is isolated
// for ingress (egress) or not; traffic to (from) an isolated pod is allowed
// only where some Allow call says so; a connection needs both its source's
// egress and its destination's ingress to allow it. On top, whatever the
// calls, the Kubernetes exceptions hold: a pod always reaches itself, and
// traffic between a pod and its own node is always allowed (see the
// package comment).
type Expectation struct {
	model                         Model
	ports                         []Port
	ingressIsolated               map[Peer]bool
	egressIsolated                map[Peer]bool
	ingressAllowed, egressAllowed map[Cell]bool
}

// NewExpectation starts from no policy at all: everything reachable, on
// each of ports.
func NewExpectation(m Model, ports []Port) *Expectation {
	return &Expectation{
		model: m, ports: slices.Clone(ports),
		ingressIsolated: map[Peer]bool{}, egressIsolated: map[Peer]bool{},
		ingressAllowed: map[Cell]bool{}, egressAllowed: map[Cell]bool{},
	}
}

// DenyIngressTo isolates the pods to selects for ingress: nothing reaches
// them unless an AllowIngressTo lets it.
func (e *Expectation) DenyIngressTo(to Selector) *Expectation {
	for _, p := range e.model.Pods() {
		if to(p) {
			e.ingressIsolated[p] = true
		}
	}
	return e
}

// AllowIngressTo lets what from selects reach the pods to selects on ports
// (every port when none is given), should they be isolated for ingress.
func (e *Expectation) AllowIngressTo(to, from Selector, ports ...Port) *Expectation {
	e.allow(e.ingressAllowed, from, to, ports)
	return e
}

// DenyEgressFrom isolates the pods from selects for egress: they reach
// nothing unless an AllowEgressFrom lets them.
func (e *Expectation) DenyEgressFrom(from Selector) *Expectation {
	for _, p := range e.model.Pods() {
		if from(p) {
			e.egressIsolated[p] = true
		}
	}
	return e
}

// AllowEgressFrom lets the pods from selects reach what to selects on ports
// (every port when none is given), should they be isolated for egress.
func (e *Expectation) AllowEgressFrom(from, to Selector, ports ...Port) *Expectation {
	e.allow(e.egressAllowed, from, to, ports)
	return e
}

func (e *Expectation) allow(into map[Cell]bool, from, to Selector, ports []Port) {
	if len(ports) == 0 {
		ports = e.ports
	}
	for _, src := range e.model.Sources() {
		for _, dst := range e.model.Destinations() {
			if !from(src) || !to(dst) {
				continue
			}
			for _, port := range ports {
				into[Cell{src, dst, port}] = true
			}
		}
	}
}

// Reachable is the expectation for one cell.
func (e *Expectation) Reachable(c Cell) bool {
	switch {
	case c.From == c.To && c.From.IsPod():
		return true // a pod cannot block access to itself
	case c.From.Kind == NodePeer || c.To.Kind == NodePeer:
		return true // nor traffic between it and its own node
	}
	ingress := !c.To.IsPod() || !e.ingressIsolated[c.To] || e.ingressAllowed[c]
	egress := !c.From.IsPod() || !e.egressIsolated[c.From] || e.egressAllowed[c]
	return ingress && egress
}

// Matrix is the expected matrix.
func (e *Expectation) Matrix() *Matrix {
	m := NewMatrix(e.model, e.ports)
	for _, c := range m.Cells() {
		o := Blocked
		if e.Reachable(c) {
			o = Reachable
		}
		m.Set(c, o, "")
	}
	return m
}
