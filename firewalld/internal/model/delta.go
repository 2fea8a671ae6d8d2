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
	// LocalCIDRs and Regions are small: when they change, the new ones are
	// given whole (nil: unchanged).
	LocalCIDRs *[]netip.Prefix
	Regions    *[]Region
	KnownLocal SetDelta[netip.Addr]
	// Map deltas: Set holds new keys and keys whose value changed.
	IngressGroup, EgressGroup, PodIdent MapDelta[netip.Addr, ID]
	IngressAllow, EgressAllow           SetDelta[Allow]
	IngressAny, EgressAny               SetDelta[AnyAllow]
}

// SetDelta are the elements added to and deleted from a set.
type SetDelta[T comparable] struct {
	Add, Del map[T]struct{}
}

// MapDelta are the keys set (new or with a new value) and deleted.
type MapDelta[K comparable, V comparable] struct {
	Set map[K]V
	Del map[K]struct{}
}

// NewDelta returns an empty Delta with its maps made.
func NewDelta() *Delta {
	return &Delta{
		KnownLocal:   newSetDelta[netip.Addr](),
		IngressGroup: newMapDelta[netip.Addr, ID](), EgressGroup: newMapDelta[netip.Addr, ID](), PodIdent: newMapDelta[netip.Addr, ID](),
		IngressAllow: newSetDelta[Allow](), EgressAllow: newSetDelta[Allow](),
		IngressAny: newSetDelta[AnyAllow](), EgressAny: newSetDelta[AnyAllow](),
	}
}

func newSetDelta[T comparable]() SetDelta[T] {
	return SetDelta[T]{Add: map[T]struct{}{}, Del: map[T]struct{}{}}
}

func newMapDelta[K, V comparable]() MapDelta[K, V] {
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

// Put sets m[k] = v, recording it. The table replaces the element, so a
// changed value is a set, not a delete and an add.
func (d MapDelta[K, V]) Put(m map[K]V, k K, v V) {
	if old, ok := m[k]; ok && old == v {
		return
	}
	m[k] = v
	delete(d.Del, k)
	d.Set[k] = v
}

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
	n := d.KnownLocal.Len() + d.IngressGroup.Len() + d.EgressGroup.Len() + d.PodIdent.Len() +
		d.IngressAllow.Len() + d.EgressAllow.Len() + d.IngressAny.Len() + d.EgressAny.Len()
	if d.LocalCIDRs != nil {
		n++
	}
	if d.Regions != nil {
		n++
	}
	return n
}

// ApplyTo changes dp by the delta.
func (d *Delta) ApplyTo(dp *Datapath) {
	if d.LocalCIDRs != nil {
		dp.LocalCIDRs = slices.Clone(*d.LocalCIDRs)
	}
	if d.Regions != nil {
		dp.Regions = slices.Clone(*d.Regions)
	}
	applySet(d.KnownLocal, dp.KnownLocal)
	applyMap(d.IngressGroup, dp.IngressGroup)
	applyMap(d.EgressGroup, dp.EgressGroup)
	applyMap(d.PodIdent, dp.PodIdent)
	applySet(d.IngressAllow, dp.IngressAllow)
	applySet(d.EgressAllow, dp.EgressAllow)
	applySet(d.IngressAny, dp.IngressAny)
	applySet(d.EgressAny, dp.EgressAny)
}

func applySet[T comparable](d SetDelta[T], s map[T]struct{}) {
	for e := range d.Del {
		delete(s, e)
	}
	for e := range d.Add {
		s[e] = struct{}{}
	}
}

func applyMap[K, V comparable](d MapDelta[K, V], m map[K]V) {
	for k := range d.Del {
		delete(m, k)
	}
	maps.Copy(m, d.Set)
}

// Clone returns a deep copy of dp.
func (d *Datapath) Clone() *Datapath {
	return &Datapath{
		LocalCIDRs: slices.Clone(d.LocalCIDRs), Regions: slices.Clone(d.Regions),
		KnownLocal: maps.Clone(d.KnownLocal), IngressGroup: maps.Clone(d.IngressGroup), EgressGroup: maps.Clone(d.EgressGroup),
		PodIdent: maps.Clone(d.PodIdent), IngressAllow: maps.Clone(d.IngressAllow), EgressAllow: maps.Clone(d.EgressAllow),
		IngressAny: maps.Clone(d.IngressAny), EgressAny: maps.Clone(d.EgressAny),
	}
}
