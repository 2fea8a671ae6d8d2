package nft

import (
	"errors"
	"fmt"
	"maps"
	"sync"
)

// Fake is an in-memory Interface for the tests of proxyd's sync loop: the
// real applier (same reads, diffs, transactions and counts) over a memory
// that behaves like the kernel where it matters: a transaction applies
// whole or not at all, deleting a missing element fails it, the table can
// be changed behind proxyd's back.
type Fake struct {
	mu sync.Mutex
	a  applier
	k  *memKernel
}

var _ Interface = (*Fake)(nil)

// NewFake returns a fake whose kernel has no table yet.
func NewFake() *Fake {
	k := &memKernel{}
	return &Fake{a: newApplier(k), k: k}
}

// Apply is part of Interface.
func (f *Fake) Apply(d Desired) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.a.apply(d)
}

// Delete is part of Interface.
func (f *Fake) Delete() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.a.delete()
}

// Invalidate is part of Interface.
func (f *Fake) Invalidate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.a.invalidate()
}

// Dump is the fake kernel's table.
type Dump struct {
	// Exists: the table is there.
	Exists bool
	// Sets are the elements of every set as nft lists them, sorted.
	Sets map[string][]string
	// Transactions is the number of transactions committed so far.
	Transactions int
	// Last is what the last committed transaction did.
	Last Result
}

// Dump returns the fake kernel's table.
func (f *Fake) Dump() Dump {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := Dump{Exists: f.k.exists, Transactions: f.k.transactions, Last: f.k.last}
	if f.k.exists {
		d.Sets = f.a.rs.render(f.k.sets)
	}
	return d
}

// FailNext makes the next transaction fail with err, writing nothing.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.k.failNext = err
}

// Tamper changes the table's static part behind proxyd's back (as someone
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
	last         Result
	failNext     error
}

func (m *memKernel) read(rs *ruleset) (content, string, error) {
	switch {
	case !m.exists:
		return nil, "table missing", nil
	case m.tampered != "":
		return nil, m.tampered, nil
	}
	c := make(content, len(m.sets))
	for name, es := range m.sets {
		c[name] = maps.Clone(es)
	}
	return c, "", nil
}

func (m *memKernel) commit(rs *ruleset, t *tx) error {
	if err := m.failNext; err != nil {
		m.failNext = nil
		return err
	}
	sets := content{}
	if !t.recreate {
		if !m.exists {
			return errors.New("no such table (ENOENT)")
		}
		for name, es := range m.sets {
			sets[name] = maps.Clone(es)
		}
	}
	for name, es := range t.del {
		for _, e := range es {
			if _, ok := sets[name][e]; !ok {
				s, _ := rs.set(name)
				return fmt.Errorf("delete %s from %s: no such element (ENOENT)", s.render(e), name)
			}
			delete(sets[name], e)
		}
	}
	for name, es := range t.add {
		for _, e := range es {
			sets.add(name, e)
		}
	}
	m.exists, m.sets = true, sets
	if t.recreate {
		m.tampered = ""
	}
	m.transactions++
	m.last = Result{Writes: t.messages(rs), Ops: t.ops(rs)}
	return nil
}

func (m *memKernel) delete() error {
	if m.exists {
		m.transactions++
		m.last = Result{Writes: 2} // add and delete the table
	}
	m.exists, m.tampered, m.sets = false, "", nil
	return nil
}
