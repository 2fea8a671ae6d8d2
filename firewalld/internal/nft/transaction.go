package nft

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// tx is one transaction: the whole table anew, or changes of its dynamic
// part (elements, peer sets, group chains and their rules).
type tx struct {
	// recreate: delete the table if it exists and create it with its
	// static part, in the same transaction; everything dynamic is then
	// added.
	recreate bool
	reason   string
	// addSets and delSets are the peer sets to create and delete, sorted.
	addSets, delSets []string
	// addChains and delChains are the group chains to create (empty) and
	// delete (with their rules), sorted.
	addChains, delChains []model.GroupKey
	// rules are the group chains whose rules are written (after a flush
	// when the chain exists), sorted.
	rules []chainRules
	// add and del are the elements to add and delete, per set, sorted.
	add, del map[string][]elem
}

// chainRules are the rules written to a group chain; flush: the chain
// exists and is emptied first.
type chainRules struct {
	key   model.GroupKey
	rules []model.Rule
	flush bool
}

func newTx() *tx {
	return &tx{add: map[string][]elem{}, del: map[string][]elem{}}
}

func (t *tx) addElem(set string, e elem) { t.add[set] = append(t.add[set], e) }
func (t *tx) delElem(set string, e elem) { t.del[set] = append(t.del[set], e) }

func compareKeys(a, b model.GroupKey) int {
	return cmp.Or(cmp.Compare(a.Direction, b.Direction), cmp.Compare(a.ID, b.ID))
}

// sort puts everything in a fixed order: the same change gives the same
// messages.
func (t *tx) sort() {
	slices.Sort(t.addSets)
	slices.Sort(t.delSets)
	slices.SortFunc(t.addChains, compareKeys)
	slices.SortFunc(t.delChains, compareKeys)
	slices.SortFunc(t.rules, func(a, b chainRules) int { return compareKeys(a.key, b.key) })
	for _, es := range t.add {
		slices.SortFunc(es, compareElems)
	}
	for _, es := range t.del {
		slices.SortFunc(es, compareElems)
	}
}

// setOrder is the order in which sets' elements are written: the fixed
// sets as the ruleset has them, then the peer sets by name.
func (rs *ruleset) setOrder(m map[string][]elem) []string {
	out := make([]string, 0, len(m))
	for _, s := range rs.sets {
		if len(m[s.name]) > 0 {
			out = append(out, s.name)
		}
	}
	fixed := len(out)
	for name, es := range m {
		if _, ok := parsePeerSetName(name); ok && len(es) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out[fixed:])
	return out
}

func parsePeerSetName(name string) (model.ID, bool) {
	id, _, ok := parsePeerSet(name)
	return id, ok
}

// plan computes the transaction that turns have (what a full read found)
// into want. have is nil when the table must be created anew (why:
// reason).
func plan(rs *ruleset, have *content, want *state, reason string) *tx {
	t := newTx()
	wantElems, wantSets, wantChains := want.content()
	if have == nil {
		t.recreate, t.reason = true, reason
		t.addSets = slices.Collect(maps.Keys(wantSets))
		for k, rules := range wantChains {
			t.addChains = append(t.addChains, k)
			t.rules = append(t.rules, chainRules{key: k, rules: rules})
		}
		for set, es := range wantElems {
			t.add[set] = sortedElems(es)
		}
		t.sort()
		return t
	}
	for name := range wantSets {
		if _, ok := have.sets[name]; !ok {
			t.addSets = append(t.addSets, name)
		}
	}
	for name := range have.sets {
		if _, ok := wantSets[name]; !ok {
			t.delSets = append(t.delSets, name)
		}
	}
	for k, rules := range wantChains {
		fp, ok := have.chains[k]
		switch {
		case !ok:
			t.addChains = append(t.addChains, k)
			t.rules = append(t.rules, chainRules{key: k, rules: rules})
		case fp != rs.fingerprint(k, rules):
			t.rules = append(t.rules, chainRules{key: k, rules: rules, flush: true})
		}
	}
	for k := range have.chains {
		if _, ok := wantChains[k]; !ok {
			t.delChains = append(t.delChains, k)
		}
	}
	for set, es := range wantElems {
		for e := range es {
			if _, ok := have.elems[set][e]; !ok {
				t.addElem(set, e)
			}
		}
	}
	for set, es := range have.elems {
		if _, ok := wantSets[set]; !ok {
			if _, peer := parsePeerSetName(set); peer {
				continue // the set goes whole
			}
		}
		for e := range es {
			if _, ok := wantElems[set][e]; !ok {
				t.delElem(set, e)
			}
		}
	}
	t.sort()
	return t
}

// empty: nothing to write.
func (t *tx) empty() bool {
	return !t.recreate && len(t.add) == 0 && len(t.del) == 0 && len(t.addSets) == 0 && len(t.delSets) == 0 &&
		len(t.addChains) == 0 && len(t.delChains) == 0 && len(t.rules) == 0
}

// messages is the number of netlink messages the transaction sends
// (without the batch's begin and end).
func (t *tx) messages(rs *ruleset) int {
	n := 0
	if t.recreate {
		n += 3 // add, delete, add the table: works whether it exists or not
		n += len(rs.sets) + len(rs.chains) + rs.fixedRules()
	}
	n += len(t.addSets) + len(t.delSets) + len(t.addChains) + len(t.delChains)
	for _, c := range t.rules {
		if c.flush {
			n++
		}
		n += rs.groupRuleCount(c.rules)
	}
	for _, m := range []map[string][]elem{t.del, t.add} {
		for set, es := range m {
			s, _ := rs.setSpec(set)
			n += len(s.chunks(es))
		}
	}
	return n
}

// result counts what the transaction changes.
func (t *tx) result(full bool) Result {
	r := Result{Full: full, Recreate: t.recreate, Reason: t.reason,
		ChainsAdded: len(t.addChains), ChainsDeleted: len(t.delChains),
		PeerSetsAdded: len(t.addSets), PeerSetsDeleted: len(t.delSets)}
	for _, c := range t.rules {
		if c.flush {
			r.ChainsChanged++
		}
	}
	for _, es := range t.add {
		r.ElementsAdded += len(es)
	}
	for _, es := range t.del {
		r.ElementsDeleted += len(es)
	}
	return r
}

// kernelBytes estimates the size of the batch, for the socket buffer.
func (t *tx) kernelBytes(rs *ruleset) int {
	n := 4096 * t.messages(rs)
	for _, m := range []map[string][]elem{t.del, t.add} {
		for set, es := range m {
			s, _ := rs.setSpec(set)
			n += nftutil.ElemBytes(s.keyLen(), s.dataLen()) * s.kernelCount(es)
		}
	}
	return n
}

// sink is where a transaction goes: the kernel's batch or the fake's
// memory. replay calls it in the transaction's order.
type sink interface {
	// recreate: the table anew with its static part (the fixed sets,
	// chains and rules).
	recreate() error
	addSet(name string) error
	addChain(k model.GroupKey) error
	flushChain(k model.GroupKey) error
	addRules(k model.GroupKey, rules []model.Rule) error
	delElems(set string, es []elem) error
	addElems(set string, es []elem) error
	delChain(k model.GroupKey) error
	delSet(name string) error
}

// replay sends t to w in the order references need: sets and chains exist
// before rules name them and elements jump to them; a chain's rules are
// replaced in one step (flushed and added again, atomic with the rest);
// elements that jump to a chain and rules that name a set are gone before
// the chain or set goes.
func (t *tx) replay(rs *ruleset, w sink) error {
	if t.recreate {
		if err := w.recreate(); err != nil {
			return err
		}
	}
	for _, name := range t.addSets {
		if err := w.addSet(name); err != nil {
			return fmt.Errorf("add set %s: %w", name, err)
		}
	}
	for _, k := range t.addChains {
		if err := w.addChain(k); err != nil {
			return fmt.Errorf("add chain %s: %w", groupChainName(k), err)
		}
	}
	for _, c := range t.rules {
		if c.flush {
			if err := w.flushChain(c.key); err != nil {
				return fmt.Errorf("flush chain %s: %w", groupChainName(c.key), err)
			}
		}
		if err := w.addRules(c.key, c.rules); err != nil {
			return fmt.Errorf("add rules to chain %s: %w", groupChainName(c.key), err)
		}
	}
	for _, set := range rs.setOrder(t.del) {
		if err := w.delElems(set, t.del[set]); err != nil {
			return fmt.Errorf("delete elements of %s: %w", set, err)
		}
	}
	for _, set := range rs.setOrder(t.add) {
		if err := w.addElems(set, t.add[set]); err != nil {
			return fmt.Errorf("add elements to %s: %w", set, err)
		}
	}
	for _, k := range t.delChains {
		if err := w.delChain(k); err != nil {
			return fmt.Errorf("delete chain %s: %w", groupChainName(k), err)
		}
	}
	for _, name := range t.delSets {
		if err := w.delSet(name); err != nil {
			return fmt.Errorf("delete set %s: %w", name, err)
		}
	}
	return nil
}

// String lists the transaction's steps, for test failures.
func (t *tx) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "recreate=%v sets +%v -%v chains +%v -%v", t.recreate, t.addSets, t.delSets, t.addChains, t.delChains)
	for _, c := range t.rules {
		fmt.Fprintf(&b, " rules(%s flush=%v %v)", groupChainName(c.key), c.flush, c.rules)
	}
	fmt.Fprintf(&b, " del %d sets, add %d sets", len(t.del), len(t.add))
	return b.String()
}
