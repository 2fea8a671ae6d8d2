package model

import (
	"maps"
	"net/netip"
	"slices"
)

// Delta is what changed in a Datapath from one compile to the next, set by
// set: what the table must add and delete, and nothing else. Applying it to
// the previous Datapath gives the new one.
type Delta struct {
	// LocalCIDRs are given whole when they change (nil: unchanged).
	LocalCIDRs *[]netip.Prefix
	KnownLocal SetDelta[netip.Addr]
	// Map deltas: Set holds new keys and keys whose value changed.
	IngressGroup, EgressGroup MapDelta[netip.Addr, ID]
	// Chains: Set holds new chains and chains whose rules changed (all of
	// their rules), Del the chains gone.
	Chains    MapDelta[GroupKey, []Rule]
	PeerElems SetDelta[PeerElem]
}

// SetDelta are the elements added to and deleted from a set.
type SetDelta[T comparable] struct {
	Add, Del map[T]struct{}
}

// MapDelta are the keys set (new or with a new value) and deleted.
type MapDelta[K comparable, V any] struct {
	Set map[K]V
	Del map[K]struct{}
}

// NewDelta returns an empty Delta with its maps made.
func NewDelta() *Delta {
	return &Delta{
		KnownLocal:   newSetDelta[netip.Addr](),
		IngressGroup: newMapDelta[netip.Addr, ID](), EgressGroup: newMapDelta[netip.Addr, ID](),
		Chains: newMapDelta[GroupKey, []Rule](), PeerElems: newSetDelta[PeerElem](),
	}
}

func newSetDelta[T comparable]() SetDelta[T] {
	return SetDelta[T]{Add: map[T]struct{}{}, Del: map[T]struct{}{}}
}

func newMapDelta[K comparable, V any]() MapDelta[K, V] {
	return MapDelta[K, V]{Set: map[K]V{}, Del: map[K]struct{}{}}
}

// Put adds e to set s, recording it; an element added after being deleted
// in the same delta cancels out.
func (d SetDelta[T]) Put(s map[T]struct{}, e T) {
	if _, ok := s[e]; ok {
		return
	}
	s[e] = struct{}{}
	if _, ok := d.Del[e]; ok {
		delete(d.Del, e)
		return
	}
	d.Add[e] = struct{}{}
}

// Remove deletes e from set s, recording it.
func (d SetDelta[T]) Remove(s map[T]struct{}, e T) {
	if _, ok := s[e]; !ok {
		return
	}
	delete(s, e)
	if _, ok := d.Add[e]; ok {
		delete(d.Add, e)
		return
	}
	d.Del[e] = struct{}{}
}

// Len is the number of changes.
func (d SetDelta[T]) Len() int { return len(d.Add) + len(d.Del) }

// Put sets m[k] = v, recording it (eq says when a value is unchanged). The
// table replaces the element, so a changed value is a set, not a delete and
// an add.
func (d MapDelta[K, V]) Put(m map[K]V, k K, v V, eq func(a, b V) bool) {
	if old, ok := m[k]; ok && eq(old, v) {
		return
	}
	m[k] = v
	delete(d.Del, k)
	d.Set[k] = v
}

// EqID compares IDs, for Put.
func EqID(a, b ID) bool { return a == b }

// EqRules compares rule lists, for Put.
func EqRules(a, b []Rule) bool { return slices.Equal(a, b) }

// Remove deletes m[k], recording it.
func (d MapDelta[K, V]) Remove(m map[K]V, k K) {
	if _, ok := m[k]; !ok {
		return
	}
	delete(m, k)
	delete(d.Set, k)
	d.Del[k] = struct{}{}
}

// Len is the number of changes.
func (d MapDelta[K, V]) Len() int { return len(d.Set) + len(d.Del) }

// Len is the number of element changes in the delta (CIDRs and regions
// count one each when replaced).
func (d *Delta) Len() int {
	n := d.KnownLocal.Len() + d.IngressGroup.Len() + d.EgressGroup.Len() + d.Chains.Len() + d.PeerElems.Len()
	if d.LocalCIDRs != nil {
		n++
	}
	return n
}

// ApplyTo changes dp by the delta.
func (d *Delta) ApplyTo(dp *Datapath) {
	if d.LocalCIDRs != nil {
		dp.LocalCIDRs = slices.Clone(*d.LocalCIDRs)
	}
	applySet(d.KnownLocal, dp.KnownLocal)
	applyMap(d.IngressGroup, dp.IngressGroup)
	applyMap(d.EgressGroup, dp.EgressGroup)
	applyMap(d.Chains, dp.Chains)
	applySet(d.PeerElems, dp.PeerElems)
}

func applySet[T comparable](d SetDelta[T], s map[T]struct{}) {
	for e := range d.Del {
		delete(s, e)
	}
	for e := range d.Add {
		s[e] = struct{}{}
	}
}

func applyMap[K comparable, V any](d MapDelta[K, V], m map[K]V) {
	for k := range d.Del {
		delete(m, k)
	}
	maps.Copy(m, d.Set)
}

// Clone returns a deep copy of dp.
func (d *Datapath) Clone() *Datapath {
	out := &Datapath{
		LocalCIDRs: slices.Clone(d.LocalCIDRs),
		KnownLocal: maps.Clone(d.KnownLocal), IngressGroup: maps.Clone(d.IngressGroup), EgressGroup: maps.Clone(d.EgressGroup),
		Chains: make(map[GroupKey][]Rule, len(d.Chains)), PeerElems: maps.Clone(d.PeerElems),
	}
	for k, rs := range d.Chains {
		out.Chains[k] = slices.Clone(rs)
	}
	return out
}
