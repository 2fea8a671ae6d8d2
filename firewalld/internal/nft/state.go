package nft

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// state is the table's dynamic content in the model's terms: a Datapath
// without what the table leaves out (bad input), the peers' elements kept
// by peer, and the counts that say which group chains and peer sets
// exist. It is the applier's own: nothing in it belongs to the caller.
type state struct {
	cidrs  []netip.Prefix
	known  map[netip.Addr]struct{}
	groups [2]map[netip.Addr]model.ID // by index in directions
	chains map[model.GroupKey][]model.Rule
	// peers are the elements of every peer, named by a rule or not (a
	// peer named later gets them then).
	peers map[model.ID]map[model.PeerElem]struct{}
	// pods counts the addresses that jump to each group's chain. A group
	// chain exists while one does or while the model gives its rules (a
	// group without rules lets nothing pass; one the model forgot does
	// the same rather than leave its pods open or the jump dangling).
	pods map[model.GroupKey]int
	// names counts the rules naming each peer: its two sets exist while
	// one does.
	names map[model.ID]int
}

var directions = [2]model.Direction{model.Ingress, model.Egress}

func newEmptyState() *state {
	return &state{
		known:  map[netip.Addr]struct{}{},
		groups: [2]map[netip.Addr]model.ID{{}, {}},
		chains: map[model.GroupKey][]model.Rule{},
		peers:  map[model.ID]map[model.PeerElem]struct{}{},
		pods:   map[model.GroupKey]int{},
		names:  map[model.ID]int{},
	}
}

func groupMap(d *model.Datapath, dir model.Direction) map[netip.Addr]model.ID {
	if dir == model.Egress {
		return d.EgressGroup
	}
	return d.IngressGroup
}

// newState is d as the table holds it: invalid addresses, empty ranges and
// port ranges left out, and of a peer's elements that overlap (which the
// model rules out, and the kernel refuses) the one sorting first kept.
func newState(d *model.Datapath) *state {
	s := newEmptyState()
	s.cidrs = slices.Clone(d.LocalCIDRs)
	for a := range d.KnownLocal {
		if canonical(a) {
			s.known[a] = struct{}{}
		}
	}
	for i, dir := range directions {
		for a, g := range groupMap(d, dir) {
			if canonical(a) {
				s.groups[i][a] = g
				s.pods[model.GroupKey{Direction: dir, ID: g}]++
			}
		}
	}
	for k, rules := range d.Chains {
		s.setChain(k, sanitizeRules(rules))
	}
	byPeer := map[model.ID][]model.PeerElem{}
	for e := range d.PeerElems {
		if validPeerElem(e) {
			byPeer[e.Peer] = append(byPeer[e.Peer], e)
		}
	}
	for p, es := range byPeer {
		slices.SortFunc(es, model.PeerElem.Compare) // IPv4 first, then by address
		m := make(map[model.PeerElem]struct{}, len(es))
		var prev model.PeerElem
		for i, e := range es {
			if i > 0 && prev.From.Is4() == e.From.Is4() && e.From.Compare(prev.To) <= 0 {
				continue
			}
			m[e] = struct{}{}
			prev = e
		}
		s.peers[p] = m
	}
	return s
}

// sanitizeRules copies rules without those whose ports match nothing.
func sanitizeRules(rules []model.Rule) []model.Rule {
	out := make([]model.Rule, 0, len(rules))
	for _, r := range rules {
		if validPorts(r.Ports) {
			out = append(out, r)
		}
	}
	return out
}

// setChain sets (rules not nil) or removes group k's rules, counting the
// peers they name.
func (s *state) setChain(k model.GroupKey, rules []model.Rule) {
	for _, r := range s.chains[k] {
		if r.Peer != model.AnyPeer {
			if s.names[r.Peer]--; s.names[r.Peer] == 0 {
				delete(s.names, r.Peer)
			}
		}
	}
	if rules == nil {
		delete(s.chains, k)
		return
	}
	for _, r := range rules {
		if r.Peer != model.AnyPeer {
			s.names[r.Peer]++
		}
	}
	s.chains[k] = rules
}

// chainView is a group chain as the table has it.
type chainView struct {
	exists bool
	rules  []model.Rule
}

func (s *state) chain(k model.GroupKey) chainView {
	rules, ok := s.chains[k]
	return chainView{exists: ok || s.pods[k] > 0, rules: rules}
}

func (s *state) named(p model.ID) bool { return s.names[p] > 0 }

// content is everything the table holds for s: the elements of every set
// (the fixed ones and the sets of the peers named), the peer sets, and
// the rules of every group chain.
func (s *state) content() (elems, map[string]struct{}, map[model.GroupKey][]model.Rule) {
	es := elems{}
	cidrElems(es, s.cidrs)
	for a := range s.known {
		es.add(knownElem(a))
	}
	chains := make(map[model.GroupKey][]model.Rule, len(s.chains))
	for i, dir := range directions {
		for a, g := range s.groups[i] {
			es.add(groupElem(dir, a, g))
			chains[model.GroupKey{Direction: dir, ID: g}] = nil
		}
	}
	maps.Copy(chains, s.chains)
	sets := map[string]struct{}{}
	for p := range s.names {
		sets[peerSetName(p, false)] = struct{}{}
		sets[peerSetName(p, true)] = struct{}{}
		for e := range s.peers[p] {
			es.add(peerElem(e))
		}
	}
	return es, sets, chains
}

// applyDelta changes s by d and returns the transaction that changes the
// table the same way. Its cost is that of the change: it looks at what d
// names and nothing else. What d adds that s has, or deletes that s does
// not have, is no change; bad input is left out as newState does (but
// for overlaps, which the model rules out: the kernel refuses the
// transaction, and the full Apply that follows leaves them out).
func (s *state) applyDelta(d *model.Delta) *tx {
	t := newTx()
	chainsBefore := map[model.GroupKey]chainView{}
	touchChain := func(k model.GroupKey) {
		if _, ok := chainsBefore[k]; !ok {
			chainsBefore[k] = s.chain(k)
		}
	}
	peersBefore := map[model.ID]bool{}
	touchRules := func(rules []model.Rule) {
		for _, r := range rules {
			if _, ok := peersBefore[r.Peer]; !ok && r.Peer != model.AnyPeer {
				peersBefore[r.Peer] = s.named(r.Peer)
			}
		}
	}

	if d.LocalCIDRs != nil {
		old, new := elems{}, elems{}
		cidrElems(old, s.cidrs)
		cidrElems(new, *d.LocalCIDRs)
		for _, f := range families() {
			for e := range new[f.localCIDRs] {
				if _, ok := old[f.localCIDRs][e]; !ok {
					t.addElem(f.localCIDRs, e)
				}
			}
			for e := range old[f.localCIDRs] {
				if _, ok := new[f.localCIDRs][e]; !ok {
					t.delElem(f.localCIDRs, e)
				}
			}
		}
		s.cidrs = slices.Clone(*d.LocalCIDRs)
	}

	for a := range d.KnownLocal.Del {
		if _, ok := s.known[a]; ok {
			delete(s.known, a)
			t.delElem(knownElem(a))
		}
	}
	for a := range d.KnownLocal.Add {
		if _, ok := s.known[a]; !ok && canonical(a) {
			s.known[a] = struct{}{}
			t.addElem(knownElem(a))
		}
	}

	for i, dir := range directions {
		md := d.IngressGroup
		if dir == model.Egress {
			md = d.EgressGroup
		}
		m := s.groups[i]
		unmap := func(a netip.Addr, g model.ID) {
			k := model.GroupKey{Direction: dir, ID: g}
			touchChain(k)
			if s.pods[k]--; s.pods[k] == 0 {
				delete(s.pods, k)
			}
			delete(m, a)
			t.delElem(groupElem(dir, a, g))
		}
		for a := range md.Del {
			if g, ok := m[a]; ok {
				unmap(a, g)
			}
		}
		for a, g := range md.Set {
			old, ok := m[a]
			if ok && old == g || !canonical(a) {
				continue
			}
			if ok {
				unmap(a, old) // a map element's value is replaced: delete and add
			}
			k := model.GroupKey{Direction: dir, ID: g}
			touchChain(k)
			s.pods[k]++
			m[a] = g
			t.addElem(groupElem(dir, a, g))
		}
	}

	for k := range d.Chains.Del {
		if old, ok := s.chains[k]; ok {
			touchChain(k)
			touchRules(old)
			s.setChain(k, nil)
		}
	}
	for k, rules := range d.Chains.Set {
		rules = sanitizeRules(rules) // a copy: the caller's slice stays the caller's
		old, ok := s.chains[k]
		if ok && slices.Equal(old, rules) {
			continue
		}
		touchChain(k)
		touchRules(old)
		touchRules(rules)
		s.setChain(k, rules)
	}

	// Elements of peers named before and after; the sets of peers named
	// anew get all their elements below, those no longer named go whole.
	wasNamed := func(p model.ID) bool {
		if was, ok := peersBefore[p]; ok {
			return was
		}
		return s.named(p)
	}
	for e := range d.PeerElems.Del {
		es := s.peers[e.Peer]
		if _, ok := es[e]; !ok {
			continue
		}
		delete(es, e)
		if len(es) == 0 {
			delete(s.peers, e.Peer)
		}
		if wasNamed(e.Peer) && s.named(e.Peer) {
			t.delElem(peerElem(e))
		}
	}
	for e := range d.PeerElems.Add {
		es := s.peers[e.Peer]
		if _, ok := es[e]; ok || !validPeerElem(e) {
			continue
		}
		if es == nil {
			es = map[model.PeerElem]struct{}{}
			s.peers[e.Peer] = es
		}
		es[e] = struct{}{}
		if wasNamed(e.Peer) && s.named(e.Peer) {
			t.addElem(peerElem(e))
		}
	}
	for p, was := range peersBefore {
		switch now := s.named(p); {
		case !was && now:
			t.addSets = append(t.addSets, peerSetName(p, false), peerSetName(p, true))
			for e := range s.peers[p] {
				t.addElem(peerElem(e))
			}
		case was && !now:
			t.delSets = append(t.delSets, peerSetName(p, false), peerSetName(p, true))
		}
	}

	for k, before := range chainsBefore {
		after := s.chain(k)
		switch {
		case !before.exists && after.exists:
			t.addChains = append(t.addChains, k)
			t.rules = append(t.rules, chainRules{key: k, rules: after.rules})
		case before.exists && !after.exists:
			t.delChains = append(t.delChains, k)
		case before.exists && !slices.Equal(before.rules, after.rules):
			t.rules = append(t.rules, chainRules{key: k, rules: after.rules, flush: true})
		}
	}
	t.sort()
	return t
}

// deltaTo is the Delta from s to n (both states: valid input only).
func (s *state) deltaTo(n *state) *model.Delta {
	d := model.NewDelta()
	if !slices.Equal(s.cidrs, n.cidrs) {
		c := slices.Clone(n.cidrs)
		d.LocalCIDRs = &c
	}
	diffSet(s.known, n.known, d.KnownLocal)
	for i, dir := range directions {
		md := d.IngressGroup
		if dir == model.Egress {
			md = d.EgressGroup
		}
		for a, g := range n.groups[i] {
			if old, ok := s.groups[i][a]; !ok || old != g {
				md.Set[a] = g
			}
		}
		for a := range s.groups[i] {
			if _, ok := n.groups[i][a]; !ok {
				md.Del[a] = struct{}{}
			}
		}
	}
	for k, rules := range n.chains {
		if old, ok := s.chains[k]; !ok || !slices.Equal(old, rules) {
			d.Chains.Set[k] = rules
		}
	}
	for k := range s.chains {
		if _, ok := n.chains[k]; !ok {
			d.Chains.Del[k] = struct{}{}
		}
	}
	for p, es := range n.peers {
		diffSet(s.peers[p], es, d.PeerElems)
	}
	for p, es := range s.peers {
		if _, ok := n.peers[p]; !ok {
			for e := range es {
				d.PeerElems.Del[e] = struct{}{}
			}
		}
	}
	return d
}

// diffSet records in d what is in new and not in old (Add) and the
// reverse (Del).
func diffSet[T comparable](old, new map[T]struct{}, d model.SetDelta[T]) {
	for e := range new {
		if _, ok := old[e]; !ok {
			d.Add[e] = struct{}{}
		}
	}
	for e := range old {
		if _, ok := new[e]; !ok {
			d.Del[e] = struct{}{}
		}
	}
}
