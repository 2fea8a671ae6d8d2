package policy

import (
	"maps"
	"slices"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// groupElems are a group's elements and what they were computed from.
type groupElems struct {
	dir                        model.Direction
	policies                   []*compiledPolicy
	ports                      map[string]uint16
	identVer, nsVer, regionVer uint64
	gid                        model.ID
	// allow holds the elements by the identity (of pods or regions) they
	// let in or out, so identities coming and going touch only theirs.
	allow map[model.ID][]model.Allow
	any   []model.AnyAllow
}

// valid: e was computed from the same policies (the same parsed objects),
// named ports, identities, namespace labels, regions and ID as g has now.
func (e *groupElems) valid(g *targetGroup, cp *Compiler) bool {
	return e.sameButIdentities(g, cp) && e.identVer == cp.identVer
}

// sameButIdentities: e is valid but for identities that came or went.
func (e *groupElems) sameButIdentities(g *targetGroup, cp *Compiler) bool {
	return e != nil && e.nsVer == cp.nsVer && e.regionVer == cp.regionVer &&
		e.gid == cp.ids.id(g.key) && slices.Equal(e.policies, g.policies) && maps.Equal(e.ports, g.ports)
}

// elements recomputes the elements of the groups whose inputs changed and
// puts the difference into the datapath.
func (cp *Compiler) elements(d *model.Delta) {
	for key, e := range cp.elems {
		if _, ok := cp.groups[key]; !ok {
			cp.replaceElems(e, nil, d)
			delete(cp.elems, key)
		}
	}
	for key, g := range cp.groups {
		old := cp.elems[key]
		if old.valid(g, cp) {
			continue
		}
		if old.sameButIdentities(g, cp) && old.identVer == cp.identVerStart {
			cp.elems[key] = cp.updateIdentities(old, g, d)
			continue
		}
		e := cp.groupElems(g)
		cp.replaceElems(old, e, d)
		cp.elems[key] = e
	}
}

// updateIdentities changes a group's elements for the identities that came
// and went in this compile only: a new label set costs its own elements,
// not the group's.
func (cp *Compiler) updateIdentities(old *groupElems, g *targetGroup, d *model.Delta) *groupElems {
	e := *old
	e.identVer = cp.identVer
	e.allow = maps.Clone(old.allow)
	allow, ad := cp.dp.IngressAllow, d.IngressAllow
	if g.dir == model.Egress {
		allow, ad = cp.dp.EgressAllow, d.EgressAllow
	}
	for _, id := range cp.goneIdents {
		for _, a := range e.allow[id.id] {
			ad.Remove(allow, a)
		}
		delete(e.allow, id.id)
	}
	for _, id := range cp.addedIdents {
		if _, ok := cp.idents[id.key]; !ok {
			continue // came and went
		}
		var rs []model.PortRange
		for _, pol := range g.policies {
			for i := range pol.dirRules(g.dir) {
				rs = append(rs, identRanges(&pol.dirRules(g.dir)[i], g, id, cp)...)
			}
		}
		gid := cp.ids.id(id.key)
		for _, r := range normalize(rs) {
			a := model.Allow{Group: e.gid, Ident: gid, Ports: r}
			e.allow[gid] = append(e.allow[gid], a)
			ad.Put(allow, a)
		}
	}
	return &e
}

// identRanges is what rule r of group g lets pass for pods of identity id.
func identRanges(r *compiledRule, g *targetGroup, id *identity, cp *Compiler) []model.PortRange {
	egressNamed := g.dir == model.Egress && r.hasNamed()
	if r.allPeers {
		if egressNamed {
			return r.resolve(id.ports)
		}
		return nil // an AnyAllow element already covers every address
	}
	for _, p := range r.peers {
		if p.selectorPeer && cp.peerMatches(p, id) {
			if egressNamed {
				return r.resolve(id.ports)
			}
			return r.resolve(g.ports)
		}
	}
	return nil
}

// replaceElems takes old's elements out of the datapath and puts new's in
// (either may be nil).
func (cp *Compiler) replaceElems(old, new *groupElems, d *model.Delta) {
	dir := model.Ingress
	if new != nil {
		dir = new.dir
	} else if old != nil {
		dir = old.dir
	}
	allow, anyAllow, ad, anyD := cp.dp.IngressAllow, cp.dp.IngressAny, d.IngressAllow, d.IngressAny
	if dir == model.Egress {
		allow, anyAllow, ad, anyD = cp.dp.EgressAllow, cp.dp.EgressAny, d.EgressAllow, d.EgressAny
	}
	var keep map[model.Allow]bool
	var keepAny map[model.AnyAllow]bool
	if new != nil {
		keep = map[model.Allow]bool{}
		for _, as := range new.allow {
			for _, a := range as {
				keep[a] = true
			}
		}
		keepAny = make(map[model.AnyAllow]bool, len(new.any))
		for _, a := range new.any {
			keepAny[a] = true
		}
	}
	if old != nil {
		for _, as := range old.allow {
			for _, a := range as {
				if !keep[a] {
					ad.Remove(allow, a)
				}
			}
		}
		for _, a := range old.any {
			if !keepAny[a] {
				anyD.Remove(anyAllow, a)
			}
		}
	}
	if new != nil {
		for _, as := range new.allow {
			for _, a := range as {
				ad.Put(allow, a)
			}
		}
		for _, a := range new.any {
			anyD.Put(anyAllow, a)
		}
	}
}

// groupElems computes a group's elements.
func (cp *Compiler) groupElems(g *targetGroup) *groupElems {
	regionsOf := map[*peer][]model.ID{}
	for _, r := range cp.regions {
		for _, p := range r.peers {
			regionsOf[p] = append(regionsOf[p], cp.ids.id(r.key))
		}
	}
	gid := cp.ids.id(g.key)
	pairs := map[model.ID][]model.PortRange{}
	var anyPorts []model.PortRange
	add := func(id model.ID, rs []model.PortRange) { pairs[id] = append(pairs[id], rs...) }
	for _, pol := range g.policies {
		for i := range pol.dirRules(g.dir) {
			r := &pol.dirRules(g.dir)[i]
			egressNamed := g.dir == model.Egress && r.hasNamed()
			if r.allPeers {
				if !egressNamed {
					anyPorts = append(anyPorts, r.resolve(g.ports)...)
					continue
				}
				// Named ports resolve on each destination pod: per identity.
				for _, id := range cp.idents {
					add(cp.ids.id(id.key), r.resolve(id.ports))
				}
				continue
			}
			for _, p := range r.peers {
				if !p.selectorPeer {
					// Addresses that are not pods have no named ports.
					rs := r.resolve(g.ports)
					if g.dir == model.Egress {
						rs = r.resolve(nil)
					}
					for _, id := range regionsOf[p] {
						add(id, rs)
					}
					continue
				}
				var shared []model.PortRange
				if !egressNamed {
					shared = r.resolve(g.ports)
				}
				for _, id := range cp.matching(p) {
					if egressNamed {
						add(cp.ids.id(id.key), r.resolve(id.ports))
					} else {
						add(cp.ids.id(id.key), shared)
					}
				}
			}
		}
	}
	e := &groupElems{dir: g.dir, policies: g.policies, ports: g.ports, identVer: cp.identVer, nsVer: cp.nsVer, regionVer: cp.regionVer, gid: gid,
		allow: make(map[model.ID][]model.Allow, len(pairs))}
	for id, rs := range pairs {
		for _, r := range normalize(rs) {
			e.allow[id] = append(e.allow[id], model.Allow{Group: gid, Ident: id, Ports: r})
		}
	}
	for _, r := range normalize(anyPorts) {
		e.any = append(e.any, model.AnyAllow{Group: gid, Ports: r})
	}
	return e
}
