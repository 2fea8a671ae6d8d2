package egress

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Fake is an in-memory Interface for the tests of routerd's sync loop: the
// real applier (same reads, diffs, transactions and counts) over a memory
// that behaves like the kernel where it matters: a transaction applies
// whole or not at all, deleting a missing element fails it, and the table
// can be changed behind routerd's back.
type Fake struct {
	mu sync.Mutex
	a  applier
	k  *memKernel
}

var _ Interface = (*Fake)(nil)

// NewFake returns a fake whose kernel has no table yet.
func NewFake() *Fake {
	k := &memKernel{}
	return &Fake{a: applier{be: k}, k: k}
}

// Apply is part of Interface.
func (f *Fake) Apply(d Desired) (Result, error) {
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

// Dump is the fake kernel's table.
type Dump struct {
	// Exists: the table is there.
	Exists bool
	// Sets are the elements of every set as nft lists them, in order.
	Sets map[string][]string
	// Transactions is the number of transactions committed so far.
	Transactions int
}

// Dump returns the fake kernel's table.
func (f *Fake) Dump() Dump {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := Dump{Exists: f.k.exists, Transactions: f.k.transactions}
	if f.k.exists {
		d.Sets = map[string][]string{}
		for _, s := range setSpecs() {
			out := []string{}
			for _, r := range f.k.sets[s.name] {
				out = append(out, r.String())
			}
			d.Sets[s.name] = out
		}
	}
	return d
}

// FailNext makes the next transaction fail with err, writing nothing.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.k.failNext = err
}

// Tamper changes the table's layout behind routerd's back (as someone
// editing a rule would): the next full Apply recreates the table.
func (f *Fake) Tamper(what string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.k.exists {
		f.k.tampered = what
	}
}

// memKernel is the fake's kernel.
type memKernel struct {
	exists       bool
	tampered     string
	sets         content
	transactions int
	failNext     error
}

func (m *memKernel) read() (content, string, error) {
	switch {
	case !m.exists:
		return nil, "table missing", nil
	case m.tampered != "":
		return nil, m.tampered, nil
	}
	return m.sets.clone(), "", nil
}

func (m *memKernel) commit(t *tx) error {
	if err := m.failNext; err != nil {
		m.failNext = nil
		return err
	}
	sets := content{}
	if !t.recreate {
		if !m.exists {
			return errors.New("no such table (ENOENT)")
		}
		sets = m.sets.clone()
	}
	for name, rs := range t.del {
		for _, r := range rs {
			i := indexOf(sets[name], r)
			if i < 0 {
				return fmt.Errorf("delete %s from %s: no such element (ENOENT)", r, name)
			}
			sets[name] = slices.Delete(sets[name], i, i+1)
		}
	}
	for name, rs := range t.add {
		for _, r := range rs {
			for _, o := range sets[name] {
				if r.first.Compare(o.last) <= 0 && o.first.Compare(r.last) <= 0 {
					return fmt.Errorf("add %s to %s: overlaps %s (EEXIST)", r, name, o)
				}
			}
			sets[name] = append(sets[name], r)
		}
		slices.SortFunc(sets[name], compareRanges)
	}
	m.exists, m.sets = true, sets
	if t.recreate {
		m.tampered = ""
	}
	m.transactions++
	return nil
}

func indexOf(rs []ipRange, r ipRange) int {
	for i, o := range rs {
		if o == r {
			return i
		}
	}
	return -1
}

func (m *memKernel) delete() error {
	if m.exists {
		m.transactions++
	}
	m.exists, m.tampered, m.sets = false, "", nil
	return nil
}
