package policy

import (
	"maps"
	"slices"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// chainCache is a group's rules and what they were computed from.
type chainCache struct {
	policies []*compiledPolicy
	ports    map[string]uint16
	// namedEgress: egress rules name ports, which resolve on the
	// destination pods; the rules then depend on the identities too.
	namedEgress     bool
	identVer, nsVer uint64
	dir             model.Direction
	// rules by the key of the peer set they name ("" for any address); the
	// sets' numbers are given when the rules go into the datapath.
	rules    map[string][]model.PortRange
	variants map[string]*variantSpec
}

// variantSpec names a peer set: the addresses of peer (nil: every pod), of
// the pods resolving a named port to a number when named is set.
type variantSpec struct {
	key   string
	p     *peer
	named string // "name/PROTOCOL"
	port  uint16
}

func (c *chainCache) valid(g *targetGroup, cp *Compiler) bool {
	return c != nil && slices.Equal(c.policies, g.policies) && maps.Equal(c.ports, g.ports) &&
		(!c.namedEgress || (c.identVer == cp.identVer && c.nsVer == cp.nsVer))
}

// chains recomputes the rules of the groups whose inputs changed and puts
// every group's chain into the datapath; it returns the peer sets the rules
// name, numbered.
func (cp *Compiler) chains(d *model.Delta) map[string]*variantSpec {
	used := map[string]*variantSpec{}
	for key, g := range cp.groups {
		c := cp.chainCache[key]
		if !c.valid(g, cp) {
			c = cp.groupRules(g)
			cp.chainCache[key] = c
		}
		maps.Copy(used, c.variants)
	}
	for key := range cp.chainCache {
		if _, ok := cp.groups[key]; !ok {
			delete(cp.chainCache, key)
		}
	}
	// Number the peer sets: new ones in key order, gone ones released.
	var fresh []string
	for k := range used {
		if _, ok := cp.peerIDs.byKey[k]; !ok {
			fresh = append(fresh, k)
		}
	}
	for k := range cp.peerIDs.byKey {
		if _, ok := used[k]; !ok {
			cp.peerIDs.release(k)
		}
	}
	cp.peerIDs.assign(fresh)

	want := make(map[model.GroupKey][]model.Rule, len(cp.groups))
	for key, g := range cp.groups {
		c := cp.chainCache[key]
		var rules []model.Rule
		for vk, rs := range c.rules {
			peerID := model.AnyPeer
			if vk != "" {
				peerID = cp.peerIDs.id(vk)
			}
			for _, r := range rs {
				rules = append(rules, model.Rule{Peer: peerID, Ports: r})
			}
		}
		slices.SortFunc(rules, model.Rule.Compare)
		want[model.GroupKey{Direction: g.dir, ID: cp.ids.id(key)}] = rules
	}
	for k := range cp.dp.Chains {
		if _, ok := want[k]; !ok {
			d.Chains.Remove(cp.dp.Chains, k)
		}
	}
	for k, rules := range want {
		d.Chains.Put(cp.dp.Chains, k, rules, model.EqRules)
	}
	return used
}

// groupRules computes a group's rules: for each rule of its policies, the
// peer sets it names with the rule's ports resolved, merged per peer set.
func (cp *Compiler) groupRules(g *targetGroup) *chainCache {
	c := &chainCache{policies: g.policies, ports: g.ports, identVer: cp.identVer, nsVer: cp.nsVer, dir: g.dir,
		rules: map[string][]model.PortRange{}, variants: map[string]*variantSpec{}}
	add := func(v *variantSpec, rs []model.PortRange) {
		if len(rs) == 0 {
			return
		}
		key := ""
		if v != nil {
			key = v.key
			c.variants[key] = v
		}
		c.rules[key] = append(c.rules[key], rs...)
	}
	for _, pol := range g.policies {
		for i := range pol.dirRules(g.dir) {
			if cp.ruleSets(g, &pol.dirRules(g.dir)[i], add) {
				c.namedEgress = true
			}
		}
	}
	for key, rs := range c.rules {
		c.rules[key] = normalize(rs)
	}
	return c
}

// ruleSets gives add the peer sets (nil: any address) and port ranges one
// rule of group g contributes to its chain. It is the one place a rule
// becomes chain rules: the chains and the trace both use it. It reports
// whether the rule is an egress rule with named ports (its sets then depend
// on the identities).
func (cp *Compiler) ruleSets(g *targetGroup, r *compiledRule, add func(*variantSpec, []model.PortRange)) (namedEgress bool) {
	if g.dir == model.Ingress || !r.hasNamed() {
		// Ports resolve on the target (ingress) or are all numbers.
		rs := r.resolve(g.ports)
		if r.allPeers {
			add(nil, rs)
		}
		for _, p := range r.peers {
			add(peerSpec(p, "", 0), rs)
		}
		return false
	}
	// Egress with named ports: they resolve on the destination pod, so
	// each number a name resolves to is a peer set of the pods resolving it
	// so; numbered ports go with the plain peer.
	numbered := r.resolve(nil)
	var targets []*peer
	if r.allPeers {
		add(nil, numbered)
		targets = []*peer{nil}
	}
	for _, p := range r.peers {
		add(peerSpec(p, "", 0), numbered)
		if p.selectorPeer {
			targets = append(targets, p) // addresses that are not pods have no named ports
		}
	}
	for _, p := range targets {
		for _, s := range r.ports {
			if s.name == "" {
				continue
			}
			n := s.name + "/" + string(s.protocolName)
			for _, port := range cp.namedValues(p, n) {
				add(peerSpec(p, n, port), []model.PortRange{{ProtoFrom: s.proto, ProtoTo: s.proto, PortFrom: port, PortTo: port}})
			}
		}
	}
	return true
}

// namedValues returns the numbers the named port resolves to on the pods
// peer p matches (every pod when nil), sorted.
func (cp *Compiler) namedValues(p *peer, named string) []uint16 {
	seen := map[uint16]bool{}
	var out []uint16
	consider := func(id *identity) {
		if port, ok := id.ports[named]; ok && !seen[port] {
			seen[port] = true
			out = append(out, port)
		}
	}
	if p == nil {
		for _, id := range cp.idents {
			consider(id)
		}
	} else {
		for _, id := range cp.matching(p) {
			consider(id)
		}
	}
	slices.Sort(out)
	return out
}

func peerSpec(p *peer, named string, port uint16) *variantSpec {
	key := "peer\x00*"
	if p != nil {
		key = "peer\x00" + p.key
	}
	if named != "" {
		key += "\x00" + named + "=" + itoa(port)
	}
	return &variantSpec{key: key, p: p, named: named, port: port}
}
