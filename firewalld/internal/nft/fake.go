package nft

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// Fake is an in-memory Interface for the tests of firewalld's sync loop:
// the real applier (same reads, diffs, transactions and counts) over a
// memory that behaves like the kernel where it matters: a transaction
// applies whole or not at all, in the kernel's order; deleting a missing
// element or chain fails it, as do adding an element whose key is there,
// an element that jumps to a missing chain, a chain that exists, deleting
// a chain an element still jumps to, and overlapping ranges in an interval
// set of one field. The table can be changed behind firewalld's back.
// Overlaps in the concatenated sets (which the model rules out) are not
// checked.
type Fake struct {
	mu *sync.Mutex // shared with Restarted fakes, like the kernel
	a  applier
	k  *memKernel
}

var _ Interface = (*Fake)(nil)

// NewFake returns a fake whose kernel has no table yet.
func NewFake(cfg Config) *Fake {
	k := &memKernel{}
	return &Fake{mu: &sync.Mutex{}, a: newApplier(cfg, k), k: k}
}

// Restarted returns a new Fake over the same kernel: firewalld restarted
// (with cfg), knowing nothing of what it wrote before.
func (f *Fake) Restarted(cfg Config) *Fake {
	return &Fake{mu: f.mu, a: newApplier(cfg, f.k), k: f.k}
}

// Apply is part of Interface.
func (f *Fake) Apply(d *model.Datapath) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.a.apply(d)
}

// Invalidate is part of Interface.
func (f *Fake) Invalidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.a.invalidate()
}

// Delete is part of Interface.
func (f *Fake) Delete() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.a.delete()
}

// Counters is part of Interface.
func (f *Fake) Counters() (Counters, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.a.counters()
}

// Dump is the fake kernel's table.
type Dump struct {
	// Exists: the table is there.
	Exists bool
	// Sets are the elements of every set as nft lists them, sorted.
	Sets map[string][]string
	// Chains are the deny chains, sorted.
	Chains []string
	// Transactions is the number of transactions committed so far, Writes
	// the number of their messages.
	Transactions, Writes int
	// Last is what the last committed transaction did.
	Last Result
}

// Dump returns the fake kernel's table.
func (f *Fake) Dump() Dump {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := Dump{Exists: f.k.exists, Transactions: f.k.transactions, Writes: f.k.writes, Last: f.k.last}
	if f.k.exists {
		d.Sets = f.a.rs.render(f.k.elems())
		d.Chains = slices.Sorted(maps.Keys(f.k.chains))
	}
	return d
}

// FailNext makes the next transaction fail with err, writing nothing.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.k.failNext = err
}

// Tamper changes the table's static part behind firewalld's back (as
// someone editing a rule would): the next full Apply recreates the table.
func (f *Fake) Tamper(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.k.exists {
		f.k.tampered = what
	}
}

// Drop counts packets as dropped by the deny chain of group in dir, as
// the kernel would; false when there is no such chain.
func (f *Fake) Drop(dir model.Direction, group model.ID, packets, bytes uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := denyChainName(dir, group)
	c, ok := f.k.chains[name]
	if !ok {
		return false
	}
	f.k.chains[name] = Counter{Packets: c.Packets + packets, Bytes: c.Bytes + bytes}
	return true
}

// DropPending counts packets as dropped by the pending rules; false when
// there is no table.
func (f *Fake) DropPending(packets, bytes uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.k.exists {
		return false
	}
	f.k.pending.Packets += packets
	f.k.pending.Bytes += bytes
	return true
}

// elemID identifies an element in the kernel: its key (and end key), not
// its value.
type elemID struct{ key, end string }

// memKernel is the fake's kernel.
type memKernel struct {
	exists   bool
	tampered string
	// log is the deny chains' log settings the table was written with.
	log     logConfig
	sets    map[string]map[elemID]elem
	chains  map[string]Counter
	pending Counter

	transactions, writes int
	last                 Result
	failNext             error
}

func (m *memKernel) elems() elems {
	out := elems{}
	for name, es := range m.sets {
		for _, e := range es {
			out.add(name, e)
		}
	}
	return out
}

func (m *memKernel) read(rs *ruleset) (*content, string, error) {
	switch {
	case !m.exists:
		return nil, "table missing", nil
	case m.tampered != "":
		return nil, m.tampered, nil
	case m.log != rs.log && len(m.chains) > 0:
		// The kernel sees other log settings only in the deny chains' rules.
		first := slices.Min(slices.Collect(maps.Keys(m.chains)))
		return nil, fmt.Sprintf("chain %s: rules differ (%s, want %s)", first, m.log, rs.log), nil
	}
	c := newContent()
	c.elems = m.elems()
	for name := range m.chains {
		c.chains[name] = struct{}{}
	}
	return &c, "", nil
}

func (m *memKernel) commit(rs *ruleset, t *tx) error {
	if err := m.failNext; err != nil {
		m.failNext = nil
		return err
	}
	if !t.recreate && !m.exists {
		return errors.New("no such table (ENOENT)")
	}
	// A recreate works on a new table; other transactions change the
	// table in place and undo their changes when one fails (the kernel
	// aborts the whole batch): the cost is that of the changes, not of
	// the table.
	if t.recreate {
		next := &memKernel{sets: map[string]map[elemID]elem{}, chains: map[string]Counter{}}
		if err := next.change(rs, t); err != nil {
			return err
		}
		m.sets, m.chains, m.tampered, m.pending = next.sets, next.chains, "", Counter{}
	} else if err := m.change(rs, t); err != nil {
		return err
	}
	m.exists, m.log = true, rs.log
	m.transactions++
	m.writes += t.messages(rs)
	m.last = t.result(false)
	m.last.Writes = t.messages(rs)
	return nil
}

// change applies t's element and chain changes, in the kernel's order, all
// or none.
func (m *memKernel) change(rs *ruleset, t *tx) (err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	for name, es := range t.del {
		set := m.sets[name]
		for _, e := range es {
			id := elemID{e.key, e.end}
			old, ok := set[id]
			if !ok {
				return fmt.Errorf("delete %s from %s: no such element (ENOENT)", m.render(rs, name, e), name)
			}
			delete(set, id)
			undo = append(undo, func() { set[id] = old })
		}
	}
	for _, name := range t.delChains {
		c, ok := m.chains[name]
		if !ok {
			return fmt.Errorf("delete chain %s: no such chain (ENOENT)", name)
		}
		if by := jumpsTo(rs, m.sets, name); by != "" {
			return fmt.Errorf("delete chain %s: still used by %s (EBUSY)", name, by)
		}
		delete(m.chains, name)
		undo = append(undo, func() { m.chains[name] = c })
	}
	for _, name := range t.addChains {
		if _, ok := m.chains[name]; ok {
			return fmt.Errorf("add chain %s: exists (EEXIST)", name)
		}
		m.chains[name] = Counter{}
		undo = append(undo, func() { delete(m.chains, name) })
	}
	for name, es := range t.add {
		s, _ := rs.set(name)
		set := m.sets[name]
		if set == nil {
			set = map[elemID]elem{}
			m.sets[name] = set
		}
		for _, e := range es {
			id := elemID{e.key, e.end}
			if _, ok := set[id]; ok {
				return fmt.Errorf("add %s to %s: exists (EEXIST)", s.render(e), name)
			}
			if _, ok := m.chains[e.val]; s.data == verdictData && !ok {
				return fmt.Errorf("add %s to %s: no such chain (ENOENT)", s.render(e), name)
			}
			set[id] = e
			undo = append(undo, func() { delete(set, id) })
		}
		if s.kind == rangeSet {
			if err := overlap(s, set); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *memKernel) render(rs *ruleset, set string, e elem) string {
	s, _ := rs.set(set)
	return s.render(e)
}

// jumpsTo names an element of a verdict map that jumps to chain, "" if none.
func jumpsTo(rs *ruleset, sets map[string]map[elemID]elem, chain string) string {
	for _, s := range rs.sets {
		if s.data != verdictData {
			continue
		}
		for _, e := range sets[s.name] {
			if e.val == chain {
				return s.name + " element " + s.render(e)
			}
		}
	}
	return ""
}

// overlap fails when two ranges of an interval set of one field overlap,
// as the kernel's rbtree refuses them (EEXIST).
func overlap(s setSpec, es map[elemID]elem) error {
	sorted := slices.SortedFunc(maps.Values(es), compareElems)
	for i := 1; i < len(sorted); i++ {
		if sorted[i].key <= sorted[i-1].end {
			return fmt.Errorf("add %s to %s: overlaps %s (EEXIST)", s.render(sorted[i]), s.name, s.render(sorted[i-1]))
		}
	}
	return nil
}

func (m *memKernel) delete() error {
	if m.exists {
		m.transactions++
		m.writes += 2 // add and delete the table
		m.last = Result{Writes: 2}
	}
	m.exists, m.tampered, m.sets, m.chains, m.pending = false, "", nil, nil, Counter{}
	return nil
}

func (m *memKernel) counters() (Counters, error) {
	out := Counters{Denied: map[GroupKey]Counter{}, Pending: m.pending}
	for name, c := range m.chains {
		if dir, id, ok := parseDenyChain(name); ok {
			out.Denied[GroupKey{dir, id}] = c
		}
	}
	return out, nil
}
