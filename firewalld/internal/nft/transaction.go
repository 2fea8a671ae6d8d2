package nft

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// tx is one transaction: either the whole table anew, or changes of
// elements and deny chains.
type tx struct {
	// recreate: delete the table if it exists and create it with all its
	// content, in the same transaction.
	recreate bool
	reason   string
	// add and del are the elements to add and delete, per set, sorted.
	add, del map[string][]elem
	// addChains and delChains are the deny chains to create and delete,
	// sorted.
	addChains, delChains []string
}

func newTx() *tx {
	return &tx{add: map[string][]elem{}, del: map[string][]elem{}}
}

// plan computes the transaction that turns have into want. have is nil
// when the table must be created anew (why: reason).
func plan(rs *ruleset, have *content, want content, reason string) *tx {
	t := newTx()
	if have == nil {
		t.recreate, t.reason = true, reason
		for _, s := range rs.sets {
			if es := want.elems.sorted(s.name); len(es) > 0 {
				t.add[s.name] = es
			}
		}
		t.addChains = want.sortedChains()
		return t
	}
	for _, s := range rs.sets {
		var add, del []elem
		for e := range want.elems[s.name] {
			if _, ok := have.elems[s.name][e]; !ok {
				add = append(add, e)
			}
		}
		for e := range have.elems[s.name] {
			if _, ok := want.elems[s.name][e]; !ok {
				del = append(del, e)
			}
		}
		t.setElems(s.name, add, del)
	}
	for c := range want.chains {
		if _, ok := have.chains[c]; !ok {
			t.addChains = append(t.addChains, c)
		}
	}
	for c := range have.chains {
		if _, ok := want.chains[c]; !ok {
			t.delChains = append(t.delChains, c)
		}
	}
	slices.Sort(t.addChains)
	slices.Sort(t.delChains)
	return t
}

// planDelta is the transaction that adds add and deletes del.
func planDelta(add, del content) *tx {
	t := newTx()
	for name := range add.elems {
		t.setElems(name, add.elems.sorted(name), nil)
	}
	for name := range del.elems {
		t.setElems(name, nil, del.elems.sorted(name))
	}
	t.addChains = add.sortedChains()
	t.delChains = del.sortedChains()
	return t
}

func (t *tx) setElems(set string, add, del []elem) {
	if len(add) > 0 {
		slices.SortFunc(add, compareElems)
		t.add[set] = add
	}
	if len(del) > 0 {
		slices.SortFunc(del, compareElems)
		t.del[set] = del
	}
}

// empty: nothing to write.
func (t *tx) empty() bool {
	return !t.recreate && len(t.add) == 0 && len(t.del) == 0 && len(t.addChains) == 0 && len(t.delChains) == 0
}

// messages is the number of netlink messages the transaction sends
// (without the batch's begin and end).
func (t *tx) messages(rs *ruleset) int {
	n := 0
	if t.recreate {
		n += 3 // add, delete, add the table: works whether it exists or not
		n += len(rs.sets) + len(rs.chains) + rs.fixedRules()
	}
	n += len(t.delChains) + len(t.addChains)*(1+rs.denyRuleCount())
	for _, s := range rs.sets {
		n += len(s.chunks(t.del[s.name])) + len(s.chunks(t.add[s.name]))
	}
	return n
}

// result counts what the transaction changes.
func (t *tx) result(full bool) Result {
	r := Result{Full: full, Recreate: t.recreate, Reason: t.reason,
		ChainsAdded: len(t.addChains), ChainsDeleted: len(t.delChains)}
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
	for _, s := range rs.sets {
		per := nftutil.ElemBytes(s.keyLen(), s.dataLen())
		n += per * (s.kernelCount(t.add[s.name]) + s.kernelCount(t.del[s.name]))
	}
	return n
}

// write queues the transaction on c (google/nftables buffers everything
// until Flush: one Flush is one kernel transaction). The order is the one
// references need: elements that jump to a deny chain go before the chain
// does, and come after it is created.
func (t *tx) write(c *nftables.Conn, rs *ruleset) error {
	tbl := table()
	sets := make(map[string]*nftables.Set, len(rs.sets))
	for i, s := range rs.sets {
		sets[s.name] = s.nftSet(tbl, uint32(i+1))
	}
	if t.recreate {
		// Adding first makes the delete succeed when the table is absent;
		// the delete drops whatever was there (foreign rules, old sets,
		// deny chains of another layout).
		c.AddTable(tbl)
		c.DelTable(tbl)
		c.AddTable(tbl)
		for _, s := range rs.sets {
			if err := c.AddSet(sets[s.name], nil); err != nil {
				return fmt.Errorf("set %s: %w", s.name, err)
			}
		}
		accept := nftables.ChainPolicyAccept
		for _, cs := range rs.chains {
			ch := &nftables.Chain{Name: cs.name, Table: tbl}
			if cs.hook != nil {
				ch.Hooknum = cs.hook
				ch.Priority = nftables.ChainPriorityRef(cs.priority)
				ch.Type = nftables.ChainTypeFilter
				ch.Policy = &accept
			}
			addRules(c, c.AddChain(ch), cs.rules)
		}
	}
	for _, s := range rs.sets {
		for _, chunk := range s.chunks(t.del[s.name]) {
			if err := c.SetDeleteElements(sets[s.name], s.kernelElems(chunk, false)); err != nil {
				return fmt.Errorf("delete elements of %s: %w", s.name, err)
			}
		}
	}
	// The elements that jumped to these chains are gone now: the kernel
	// deletes a chain (with its rules) only when nothing refers to it.
	for _, name := range t.delChains {
		c.DelChain(&nftables.Chain{Name: name, Table: tbl})
	}
	for _, name := range t.addChains {
		dir, id, ok := parseDenyChain(name)
		if !ok {
			return fmt.Errorf("not a deny chain: %q", name)
		}
		addRules(c, c.AddChain(&nftables.Chain{Name: name, Table: tbl}), rs.denyRules(dir, id))
	}
	for _, s := range rs.sets {
		for _, chunk := range s.chunks(t.add[s.name]) {
			if err := c.SetAddElements(sets[s.name], s.kernelElems(chunk, true)); err != nil {
				return fmt.Errorf("add elements to %s: %w", s.name, err)
			}
		}
	}
	return nil
}

func addRules(c *nftables.Conn, ch *nftables.Chain, rules []ruleSpec) {
	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: r.exprs, UserData: r.userData()})
	}
}

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}
