package egress

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// tx is one transaction: the whole table anew, or element changes.
type tx struct {
	// recreate: delete the table if it exists and create it with all its
	// elements (add), in the same transaction.
	recreate bool
	reason   string
	// add and del are the ranges to add and to delete, per set, sorted.
	add, del content
}

// plan computes the transaction that turns have into want; have is nil
// when the table must be created anew (why: reason).
func plan(have, want content, reason string) *tx {
	if have == nil {
		add := content{}
		for name, rs := range want {
			if len(rs) > 0 {
				add[name] = rs
			}
		}
		return &tx{recreate: true, reason: reason, add: add, del: content{}}
	}
	add, del := diff(have, want)
	return &tx{add: add, del: del}
}

// empty: nothing to write.
func (t *tx) empty() bool {
	return !t.recreate && t.count(t.add) == 0 && t.count(t.del) == 0
}

func (t *tx) count(c content) int {
	n := 0
	for _, rs := range c {
		n += len(rs)
	}
	return n
}

// perMessage is how many ranges of set s go in one message (an element
// list is one netlink attribute: nftutil.MaxElemListBytes); a range is up
// to two kernel elements.
func perMessage(s setSpec) int {
	return max(1, nftutil.PerMessage(nftutil.ElemBytes(s.keyLen(), 0))/2)
}

// messages is the number of netlink messages the transaction sends
// (without the batch's begin and end).
func (t *tx) messages() int {
	n := 0
	if t.recreate {
		n += 3 + len(setSpecs()) + 1 + len(ruleSpecs()) // table add, delete, add; sets; chain; rules
	}
	for _, s := range setSpecs() {
		n += len(nftutil.Chunks(t.del[s.name], perMessage(s))) + len(nftutil.Chunks(t.add[s.name], perMessage(s)))
	}
	return n
}

// kernelBytes estimates the size of the batch, for the socket buffer.
func (t *tx) kernelBytes() int {
	n := 1024 * t.messages()
	for _, s := range setSpecs() {
		n += nftutil.ElemBytes(s.keyLen(), 0) * (kernelCount(t.add[s.name]) + kernelCount(t.del[s.name]))
	}
	return n
}

// write queues the transaction on c (google/nftables buffers everything
// until Flush: one Flush is one kernel transaction).
func (t *tx) write(c *nftables.Conn) error {
	tbl := table()
	specs := setSpecs()
	sets := make(map[string]*nftables.Set, len(specs))
	for i, s := range specs {
		sets[s.name] = s.nftSet(tbl, uint32(i+1))
	}
	if t.recreate {
		// Adding first makes the delete succeed when the table is absent;
		// the delete drops whatever was there (a foreign or older layout).
		c.AddTable(tbl)
		c.DelTable(tbl)
		c.AddTable(tbl)
		for _, s := range specs {
			if err := c.AddSet(sets[s.name], nil); err != nil {
				return fmt.Errorf("set %s: %w", s.name, err)
			}
		}
		ch := c.AddChain(postrouting(tbl))
		for _, r := range ruleSpecs() {
			c.AddRule(r.rule(tbl, ch))
		}
	}
	// Deletions first: a range replaced by a larger one must be gone
	// before the larger one goes in (an interval set refuses overlaps).
	for _, s := range specs {
		for _, chunk := range nftutil.Chunks(t.del[s.name], perMessage(s)) {
			if err := c.SetDeleteElements(sets[s.name], kernelElems(chunk)); err != nil {
				return fmt.Errorf("delete elements of %s: %w", s.name, err)
			}
		}
	}
	for _, s := range specs {
		for _, chunk := range nftutil.Chunks(t.add[s.name], perMessage(s)) {
			if err := c.SetAddElements(sets[s.name], kernelElems(chunk)); err != nil {
				return fmt.Errorf("add elements to %s: %w", s.name, err)
			}
		}
	}
	return nil
}
