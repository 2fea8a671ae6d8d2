package vip

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
)

// Fake is an in-memory Interface with Kernel's semantics: adding a VIP
// that is there and deleting one that is not succeed, an address CheckAddr
// refuses fails with a *VIPError wrapping ErrInvalid, and the batch forms
// apply every valid VIP and join the failures. It counts calls and route
// writes (what Kernel would send the kernel) so reconciler tests can assert
// that a sync with nothing to do writes nothing, or that many VIPs went in
// one batch. It is safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	vips     map[netip.Addr]struct{}
	counts   map[Op]int
	routes   int
	failures map[Op][]error
}

var _ Interface = (*Fake)(nil)

// NewFake returns a Fake with no VIPs.
func NewFake() *Fake {
	return &Fake{
		vips:     map[netip.Addr]struct{}{},
		counts:   map[Op]int{},
		failures: map[Op][]error{},
	}
}

// Op is one method of Interface.
type Op uint8

// The methods of Interface.
const (
	OpList Op = iota + 1
	OpAdd
	OpDelete
	OpAddAll
	OpDeleteAll
)

func (o Op) String() string {
	switch o {
	case OpList:
		return "List"
	case OpAdd:
		return "Add"
	case OpDelete:
		return "Delete"
	case OpAddAll:
		return "AddAll"
	case OpDeleteAll:
		return "DeleteAll"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Count is how many times op was called since NewFake or Reset, failed
// calls included.
func (f *Fake) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// Counts is a copy of every call count, by method.
func (f *Fake) Counts() map[Op]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

// RouteWrites is the number of route requests Kernel would have sent the
// kernel since NewFake or Reset: one per valid VIP of every write call,
// whether or not it changed anything (an add of a VIP that is there is
// still a request). Calls failed with FailNext send nothing.
func (f *Fake) RouteWrites() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.routes
}

// Reset forgets the counts and the failures not yet returned; the VIPs
// stay.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts = map[Op]int{}
	f.routes = 0
	f.failures = map[Op][]error{}
}

// FailNext makes the next call of op return err (as is) and change
// nothing; calls queue up one failure each.
func (f *Fake) FailNext(op Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[op] = append(f.failures[op], err)
}

// Seed adds VIPs as if an earlier proxyd had (a restarted one finds them),
// without counting anything. It fails like Add would.
func (f *Fake) Seed(vips ...netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, v := range vips {
		if err := CheckAddr(v); err != nil {
			errs = append(errs, &VIPError{Op: opAdd.String(), VIP: v, Err: err})
			continue
		}
		f.vips[v] = struct{}{}
	}
	return errors.Join(errs...)
}

// call counts a call of op and returns the failure queued for it, if any.
// f.mu is held.
func (f *Fake) call(op Op) error {
	f.counts[op]++
	if q := f.failures[op]; len(q) > 0 {
		f.failures[op] = q[1:]
		return q[0]
	}
	return nil
}

// List is part of Interface.
func (f *Fake) List() ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(OpList); err != nil {
		return nil, err
	}
	return slices.SortedFunc(maps.Keys(f.vips), netip.Addr.Compare), nil
}

// Add is part of Interface.
func (f *Fake) Add(vip netip.Addr) error { return f.write(OpAdd, opAdd, []netip.Addr{vip}) }

// Delete is part of Interface.
func (f *Fake) Delete(vip netip.Addr) error { return f.write(OpDelete, opDelete, []netip.Addr{vip}) }

// AddAll is part of Interface.
func (f *Fake) AddAll(vips []netip.Addr) error { return f.write(OpAddAll, opAdd, vips) }

// DeleteAll is part of Interface.
func (f *Fake) DeleteAll(vips []netip.Addr) error { return f.write(OpDeleteAll, opDelete, vips) }

func (f *Fake) write(method Op, o op, vips []netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(method); err != nil {
		return err
	}
	var errs []error
	for _, v := range vips {
		if err := CheckAddr(v); err != nil {
			errs = append(errs, &VIPError{Op: o.String(), VIP: v, Err: err})
			continue
		}
		f.routes++
		if o == opAdd {
			f.vips[v] = struct{}{}
		} else {
			delete(f.vips, v)
		}
	}
	return join(errs)
}
