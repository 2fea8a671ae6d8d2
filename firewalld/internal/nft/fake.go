package nft

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// Fake is an in-memory Interface for the tests of firewalld's sync loop:
// the real applier (same reads, diffs, transactions and counts) over a
// memory that behaves like the kernel where it matters. A transaction
// applies whole or not at all, step by step in the kernel's order, and
// fails (changing nothing) where the kernel's would: creating a set or
// chain that exists; flushing, deleting, or adding rules to a chain that
// does not exist; a rule naming a set that does not exist; deleting a
// chain an element still jumps to, or a set a rule still names; deleting
// an element that is not there, adding one whose key is (or that overlaps
// a range of an interval set), or one that jumps to a missing chain. The
// table can be changed behind firewalld's back.
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

// ApplyDelta is part of Interface.
func (f *Fake) ApplyDelta(d *model.Datapath, delta *model.Delta) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.a.applyDelta(d, delta)
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
	// Sets are the elements of every set (fixed and peer sets) as nft
	// lists them, sorted.
	Sets map[string][]string
	// Chains are the rules of every group chain as nft lists them.
	Chains map[string][]string
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
	if !f.k.exists {
		return d
	}
	d.Sets, d.Chains = map[string][]string{}, map[string][]string{}
	for name, s := range f.k.sets {
		lines := make([]string, 0, len(s.elems))
		for _, e := range s.elems {
			lines = append(lines, s.spec.render(e))
		}
		slices.Sort(lines)
		d.Sets[name] = lines
	}
	for k, c := range f.k.chains {
		d.Chains[groupChainName(k)] = c.rs.renderRules(k, c.rules, c.counter)
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
// someone editing a fixed rule would): the next full Apply recreates the
// table.
func (f *Fake) Tamper(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.k.exists {
		f.k.tampered = what
	}
}

// Drop counts packets as dropped by group chain k, as the kernel would;
// false when there is no such chain.
func (f *Fake) Drop(k model.GroupKey, packets, bytes uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.k.chains[k]
	if !ok {
		return false
	}
	c.counter.Packets += packets
	c.counter.Bytes += bytes
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

// memSet is a set of the fake's kernel.
type memSet struct {
	spec  setSpec
	elems map[elemID]elem
	// ranges are the elements of more than one address (of an interval
	// set): what a new single address can overlap.
	ranges map[elemID]elem
	// refs is the number of rules naming the set.
	refs int
}

// memChain is a group chain of the fake's kernel.
type memChain struct {
	rules []model.Rule
	// rs wrote the rules (its log settings are theirs); fp is what they
	// read back as.
	rs      *ruleset
	fp      string
	counter Counter
	// jumps is the number of verdict map elements jumping to it.
	jumps int
}

// memKernel is the fake's kernel.
type memKernel struct {
	exists   bool
	tampered string
	sets     map[string]*memSet
	chains   map[model.GroupKey]*memChain
	pending  Counter

	transactions, writes int
	last                 Result
	failNext             error
}

func (m *memKernel) read(*ruleset) (*content, string, error) {
	switch {
	case !m.exists:
		return nil, "table missing", nil
	case m.tampered != "":
		return nil, m.tampered, nil
	}
	c := newContent()
	for name, s := range m.sets {
		if _, peer := parsePeerSetName(name); peer {
			c.sets[name] = struct{}{}
		}
		for _, e := range s.elems {
			c.elems.add(name, e)
		}
	}
	for k, ch := range m.chains {
		c.chains[k] = ch.fp
	}
	return c, "", nil
}

func (m *memKernel) commit(rs *ruleset, t *tx) error {
	if err := m.failNext; err != nil {
		m.failNext = nil
		return err
	}
	if !t.recreate && !m.exists {
		return errors.New("no such table (ENOENT)")
	}
	// Changes happen in place and are undone when one fails (the kernel
	// aborts the whole batch): the cost is that of the changes, not of
	// the table.
	w := &memTx{m: m, rs: rs}
	if err := t.replay(rs, w); err != nil {
		for i := len(w.undo) - 1; i >= 0; i-- {
			w.undo[i]()
		}
		return err
	}
	m.exists = true
	m.transactions++
	m.writes += t.messages(rs)
	m.last = t.result(false)
	m.last.Writes = t.messages(rs)
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
	out := Counters{Denied: map[model.GroupKey]Counter{}, Pending: m.pending}
	for k, c := range m.chains {
		out.Denied[k] = c.counter
	}
	return out, nil
}

// memTx applies one transaction's steps to the fake's kernel, recording
// how to undo each.
type memTx struct {
	m    *memKernel
	rs   *ruleset
	undo []func()
}

var _ sink = (*memTx)(nil)

func (w *memTx) recreate() error {
	m := w.m
	old := *m
	w.undo = append(w.undo, func() {
		m.sets, m.chains, m.tampered, m.pending = old.sets, old.chains, old.tampered, old.pending
	})
	m.sets, m.chains, m.tampered, m.pending = map[string]*memSet{}, map[model.GroupKey]*memChain{}, "", Counter{}
	for _, s := range w.rs.sets {
		m.sets[s.name] = &memSet{spec: s, elems: map[elemID]elem{}, ranges: map[elemID]elem{}}
	}
	return nil
}

func (w *memTx) addSet(name string) error {
	if _, ok := w.m.sets[name]; ok {
		return errors.New("exists (EEXIST)")
	}
	spec, ok := w.rs.setSpec(name)
	if !ok {
		return errors.New("not a set of firewalld's")
	}
	w.m.sets[name] = &memSet{spec: spec, elems: map[elemID]elem{}, ranges: map[elemID]elem{}}
	w.undo = append(w.undo, func() { delete(w.m.sets, name) })
	return nil
}

func (w *memTx) addChain(k model.GroupKey) error {
	if _, ok := w.m.chains[k]; ok {
		return errors.New("exists (EEXIST)")
	}
	w.m.chains[k] = &memChain{rs: w.rs, fp: w.rs.fingerprintEmpty()}
	w.undo = append(w.undo, func() { delete(w.m.chains, k) })
	return nil
}

// refer counts the sets the rules name (by delta, +1 or -1).
func (w *memTx) refer(rules []model.Rule, by int) {
	for _, r := range rules {
		if r.Peer == model.AnyPeer {
			continue
		}
		for _, v6 := range []bool{false, true} {
			if s, ok := w.m.sets[peerSetName(r.Peer, v6)]; ok {
				s.refs += by
			}
		}
	}
}

func (w *memTx) flushChain(k model.GroupKey) error {
	c, ok := w.m.chains[k]
	if !ok {
		return errors.New("no such chain (ENOENT)")
	}
	old := *c
	w.refer(c.rules, -1)
	c.rules, c.fp, c.counter = nil, w.rs.fingerprintEmpty(), Counter{}
	w.undo = append(w.undo, func() {
		w.refer(old.rules, +1)
		*c = old
	})
	return nil
}

func (w *memTx) addRules(k model.GroupKey, rules []model.Rule) error {
	c, ok := w.m.chains[k]
	if !ok {
		return errors.New("no such chain (ENOENT)")
	}
	if len(c.rules) > 0 {
		return errors.New("the chain has rules: they would be doubled")
	}
	for _, r := range rules {
		if r.Peer == model.AnyPeer {
			continue
		}
		for _, v6 := range []bool{false, true} {
			if _, ok := w.m.sets[peerSetName(r.Peer, v6)]; !ok {
				return fmt.Errorf("set %s: no such set (ENOENT)", peerSetName(r.Peer, v6))
			}
		}
	}
	old := *c
	w.refer(rules, +1)
	c.rules, c.rs, c.fp, c.counter = slices.Clone(rules), w.rs, w.rs.fingerprint(k, rules), Counter{}
	w.undo = append(w.undo, func() {
		w.refer(rules, -1)
		*c = old
	})
	return nil
}

func (w *memTx) set(name string) (*memSet, error) {
	s, ok := w.m.sets[name]
	if !ok {
		return nil, errors.New("no such set (ENOENT)")
	}
	return s, nil
}

func (w *memTx) delElems(set string, es []elem) error {
	s, err := w.set(set)
	if err != nil {
		return err
	}
	for _, e := range es {
		id := elemID{e.key, e.end}
		old, ok := s.elems[id]
		if !ok {
			return fmt.Errorf("%s: no such element (ENOENT)", s.spec.render(e))
		}
		var target *memChain
		if s.spec.verdicts {
			if k, ok := parseGroupChain(old.val); ok {
				target = w.m.chains[k]
			}
		}
		s.remove(id)
		if target != nil {
			target.jumps--
		}
		w.undo = append(w.undo, func() {
			s.put(id, old)
			if target != nil {
				target.jumps++
			}
		})
	}
	return nil
}

func (w *memTx) addElems(set string, es []elem) error {
	s, err := w.set(set)
	if err != nil {
		return err
	}
	for _, e := range es {
		id := elemID{e.key, e.end}
		if _, ok := s.elems[id]; ok {
			return fmt.Errorf("%s: exists (EEXIST)", s.spec.render(e))
		}
		if s.spec.interval {
			if o, ok := s.overlap(e); ok {
				return fmt.Errorf("%s: overlaps %s (EEXIST)", s.spec.render(e), s.spec.render(o))
			}
		}
		var target *memChain
		if s.spec.verdicts {
			k, ok := parseGroupChain(e.val)
			if ok {
				target = w.m.chains[k]
			}
			if target == nil {
				return fmt.Errorf("%s: no such chain (ENOENT)", s.spec.render(e))
			}
			target.jumps++
		}
		s.put(id, e)
		w.undo = append(w.undo, func() {
			s.remove(id)
			if target != nil {
				target.jumps--
			}
		})
	}
	return nil
}

func (s *memSet) put(id elemID, e elem) {
	s.elems[id] = e
	if e.key != e.end && s.spec.interval {
		s.ranges[id] = e
	}
}

func (s *memSet) remove(id elemID) {
	delete(s.elems, id)
	delete(s.ranges, id)
}

// overlap returns an element of the interval set that e overlaps, as the
// kernel's rbtree refuses them. Keys of one set have one length: as
// strings they compare as the addresses do.
func (s *memSet) overlap(e elem) (elem, bool) {
	candidates := s.ranges
	if e.key != e.end {
		candidates = s.elems
	}
	for _, o := range candidates {
		if o.key <= e.end && e.key <= o.end {
			return o, true
		}
	}
	if e.key == e.end {
		if o, ok := s.elems[elemID{e.key, e.key}]; ok {
			return o, true
		}
	}
	return elem{}, false
}

func (w *memTx) delChain(k model.GroupKey) error {
	c, ok := w.m.chains[k]
	if !ok {
		return errors.New("no such chain (ENOENT)")
	}
	if c.jumps > 0 {
		return fmt.Errorf("%d elements still jump to it (EBUSY)", c.jumps)
	}
	w.refer(c.rules, -1)
	delete(w.m.chains, k)
	w.undo = append(w.undo, func() {
		w.refer(c.rules, +1)
		w.m.chains[k] = c
	})
	return nil
}

func (w *memTx) delSet(name string) error {
	s, err := w.set(name)
	if err != nil {
		return err
	}
	if _, peer := parsePeerSetName(name); !peer {
		return errors.New("a fixed set (EBUSY)")
	}
	if s.refs > 0 {
		return fmt.Errorf("%d rules still name it (EBUSY)", s.refs)
	}
	delete(w.m.sets, name)
	w.undo = append(w.undo, func() { w.m.sets[name] = s })
	return nil
}
