package nft

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// perMessage is how many of proxyd's elements of set s go in one message
// (an element list is one netlink attribute: nftutil.MaxElemListBytes).
func (s setSpec) perMessage() int {
	n := nftutil.PerMessage(nftutil.ElemBytes(s.keyLen(), 0))
	if s.kind == rangeSet {
		n /= 2 // a range is a start and an end element
	}
	return n
}

// chunks splits es into the element lists of successive messages.
func (s setSpec) chunks(es []elem) [][]elem {
	return nftutil.Chunks(es, s.perMessage())
}

// tx is one transaction: either the whole table anew, or element changes.
type tx struct {
	// recreate: delete the table if it exists and create it with all its
	// elements, in the same transaction.
	recreate bool
	reason   string
	// add and del are the elements to add and delete, per set, sorted.
	add, del map[string][]elem
}

// plan computes the transaction that turns have into want. have is nil
// when the table must be created anew (why: reason).
func plan(rs *ruleset, have, want content, reason string) *tx {
	t := &tx{add: map[string][]elem{}, del: map[string][]elem{}}
	if have == nil {
		t.recreate, t.reason = true, reason
		for _, s := range rs.sets {
			if es := want.sorted(s.name); len(es) > 0 {
				t.add[s.name] = es
			}
		}
		return t
	}
	for _, s := range rs.sets {
		var add, del []elem
		for e := range want[s.name] {
			if _, ok := have[s.name][e]; !ok {
				add = append(add, e)
			}
		}
		for e := range have[s.name] {
			if _, ok := want[s.name][e]; !ok {
				del = append(del, e)
			}
		}
		if len(add) > 0 {
			t.add[s.name] = sortElems(add)
		}
		if len(del) > 0 {
			t.del[s.name] = sortElems(del)
		}
	}
	return t
}

// planDelta is the transaction that adds add and deletes del.
func planDelta(add, del content) *tx {
	t := &tx{add: map[string][]elem{}, del: map[string][]elem{}}
	for name := range add {
		t.add[name] = add.sorted(name)
	}
	for name := range del {
		t.del[name] = del.sorted(name)
	}
	return t
}

func sortElems(es []elem) []elem {
	slices.SortFunc(es, compareElems)
	return es
}

// empty: nothing to write.
func (t *tx) empty() bool {
	return !t.recreate && len(t.add) == 0 && len(t.del) == 0
}

// messages is the number of netlink messages the transaction sends
// (without the batch's begin and end).
func (t *tx) messages(rs *ruleset) int {
	n := 0
	if t.recreate {
		n += 3 // add, delete, add the table: works whether it exists or not
		n += len(rs.sets) + len(rs.chains)
		for _, c := range rs.chains {
			n += len(c.rules)
		}
	}
	for _, s := range rs.sets {
		n += len(s.chunks(t.del[s.name])) + len(s.chunks(t.add[s.name]))
	}
	return n
}

// ops counts what the transaction changes.
func (t *tx) ops(rs *ruleset) Ops {
	o := Ops{Recreate: t.recreate, Reason: t.reason}
	if t.recreate {
		o.Sets, o.Chains = len(rs.sets), len(rs.chains)
		for _, c := range rs.chains {
			o.Rules += len(c.rules)
		}
	}
	for _, es := range t.add {
		o.ElementsAdded += len(es)
	}
	for _, es := range t.del {
		o.ElementsDeleted += len(es)
	}
	return o
}

// kernelBytes estimates the size of the batch, for the socket buffer.
func (t *tx) kernelBytes(rs *ruleset) int {
	n := 4096 * t.messages(rs)
	for _, s := range rs.sets {
		per := nftutil.ElemBytes(s.keyLen(), 0)
		n += per * (s.kernelCount(t.add[s.name]) + s.kernelCount(t.del[s.name]))
	}
	return n
}

// write queues the transaction on c (google/nftables buffers everything
// until Flush: one Flush is one kernel transaction).
func (t *tx) write(c *nftables.Conn, rs *ruleset) error {
	tbl := table()
	sets := make(map[string]*nftables.Set, len(rs.sets))
	for i, s := range rs.sets {
		sets[s.name] = s.nftSet(tbl, uint32(i+1))
	}
	if t.recreate {
		// Adding first makes the delete succeed when the table is absent;
		// the delete drops whatever was there (foreign rules, old sets).
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
			ch := c.AddChain(&nftables.Chain{
				Name:     cs.name,
				Table:    tbl,
				Hooknum:  nftables.ChainHookRef(cs.hook),
				Priority: nftables.ChainPriorityRef(cs.priority),
				Type:     cs.typ,
				Policy:   &accept,
			})
			for _, r := range cs.rules {
				c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: r.exprs, UserData: r.userData()})
			}
		}
	}
	for _, s := range rs.sets {
		for _, chunk := range s.chunks(t.del[s.name]) {
			if err := c.SetDeleteElements(sets[s.name], s.kernelElems(chunk)); err != nil {
				return fmt.Errorf("delete elements of %s: %w", s.name, err)
			}
		}
	}
	for _, s := range rs.sets {
		for _, chunk := range s.chunks(t.add[s.name]) {
			if err := c.SetAddElements(sets[s.name], s.kernelElems(chunk)); err != nil {
				return fmt.Errorf("add elements to %s: %w", s.name, err)
			}
		}
	}
	return nil
}
