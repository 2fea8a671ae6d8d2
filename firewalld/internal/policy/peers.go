package policy

import (
	"net/netip"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// variant is a peer set in the datapath: its number, and for sets of pods
// the identities whose pods it holds.
type variant struct {
	spec    *variantSpec
	id      model.ID
	members map[*identity]bool
	nsVer   uint64
	stamp   uint64 // the compile that made it
}

// ownerChange is an address whose pod changed in this compile.
type ownerChange struct {
	ip       netip.Addr
	old, new *podInfo
}

// holds reports whether the set should hold the pods of identity id.
func (v *variantSpec) holds(cp *Compiler, id *identity) bool {
	if v.p != nil && (!v.p.selectorPeer || !cp.peerMatches(v.p, id)) {
		return false
	}
	if v.named != "" {
		port, ok := id.ports[v.named]
		return ok && port == v.port
	}
	return true
}

// peerSets brings the peer sets in line with the chains' (used) and the pods:
// sets no longer named go, new ones are filled, and in the others only the
// addresses of pods that came or went, or whose identity did, change.
func (cp *Compiler) peerSets(used map[string]*variantSpec, d *model.Delta) {
	// Addresses whose pod changed, in the sets that held or should hold
	// them (new identities are not members of anything yet).
	for _, ch := range cp.ownerChanges {
		if ch.old != nil {
			for _, v := range cp.byIdent[ch.old.ident] {
				d.PeerElems.Remove(cp.dp.PeerElems, elem(v.id, ch.ip))
			}
		}
		if ch.new != nil {
			for _, v := range cp.byIdent[ch.new.ident] {
				d.PeerElems.Put(cp.dp.PeerElems, elem(v.id, ch.ip))
			}
		}
	}
	for _, id := range cp.goneIdents {
		for _, v := range cp.byIdent[id] {
			delete(v.members, id)
		}
		delete(cp.byIdent, id)
	}
	// Only now, with every set holding its pods' current addresses, can a
	// set no longer named be emptied by its members' addresses.
	for key, v := range cp.variants {
		if _, ok := used[key]; !ok || cp.peerIDs.id(key) != v.id {
			cp.dropVariant(v, d)
			delete(cp.variants, key)
		}
	}
	for _, v := range cp.variants {
		if v.spec.p != nil && !v.spec.p.selectorPeer {
			continue // an ipBlock: fixed addresses
		}
		if v.nsVer != cp.nsVer {
			cp.refill(v, d) // namespace labels changed: who matches may have
			continue
		}
		for _, id := range cp.addedIdents {
			if _, live := cp.idents[id.key]; live && !v.members[id] && v.spec.holds(cp, id) {
				cp.join(v, id, d)
			}
		}
	}
	for key, spec := range used {
		if _, ok := cp.variants[key]; ok {
			continue
		}
		v := &variant{spec: spec, id: cp.peerIDs.id(key), members: map[*identity]bool{}, nsVer: cp.nsVer, stamp: cp.gen}
		cp.variants[key] = v
		if spec.p != nil && !spec.p.selectorPeer {
			for _, r := range spec.p.ranges() {
				d.PeerElems.Put(cp.dp.PeerElems, model.PeerElem{Peer: v.id, From: r.from, To: r.to})
			}
			continue
		}
		cp.refill(v, d)
	}
}

// refill recomputes the members of a set of pods and its addresses.
func (cp *Compiler) refill(v *variant, d *model.Delta) {
	want := map[*identity]bool{}
	var candidates []*identity
	if v.spec.p != nil {
		candidates = cp.matching(v.spec.p)
	} else {
		for _, id := range cp.idents {
			candidates = append(candidates, id)
		}
	}
	for _, id := range candidates {
		if v.spec.holds(cp, id) {
			want[id] = true
		}
	}
	for id := range v.members {
		if !want[id] {
			cp.leave(v, id, d)
		}
	}
	for id := range want {
		if !v.members[id] {
			cp.join(v, id, d)
		}
	}
	v.nsVer = cp.nsVer
}

func (cp *Compiler) join(v *variant, id *identity, d *model.Delta) {
	v.members[id] = true
	cp.byIdent[id] = append(cp.byIdent[id], v)
	for ip := range id.ips {
		d.PeerElems.Put(cp.dp.PeerElems, elem(v.id, ip))
	}
}

func (cp *Compiler) leave(v *variant, id *identity, d *model.Delta) {
	delete(v.members, id)
	list := cp.byIdent[id]
	for i, w := range list {
		if w == v {
			list[i] = list[len(list)-1]
			cp.byIdent[id] = list[:len(list)-1]
			break
		}
	}
	for ip := range id.ips {
		d.PeerElems.Remove(cp.dp.PeerElems, elem(v.id, ip))
	}
}

// dropVariant takes a set and its addresses out.
func (cp *Compiler) dropVariant(v *variant, d *model.Delta) {
	for id := range v.members {
		cp.leave(v, id, d)
	}
	if v.spec.p != nil && !v.spec.p.selectorPeer {
		for _, r := range v.spec.p.ranges() {
			d.PeerElems.Remove(cp.dp.PeerElems, model.PeerElem{Peer: v.id, From: r.from, To: r.to})
		}
	}
}

func elem(peer model.ID, ip netip.Addr) model.PeerElem {
	return model.PeerElem{Peer: peer, From: ip, To: ip}
}
