package egress

import (
	"fmt"
	"net/netip"
)

// Desired is what the table should do.
type Desired struct {
	// PodCIDRs are this node's pod CIDRs: connections from them are
	// masqueraded unless they go to NoMasquerade.
	PodCIDRs []netip.Prefix
	// NoMasquerade are the destinations pods reach with their own
	// address: every pod CIDR of the cluster, the Service CIDRs, and
	// configured extras. This node's pod CIDRs are added to them.
	NoMasquerade []netip.Prefix
}

// Interface is what routerd does to its nftables table. routerd's sync
// loop is its only caller: implementations need not be safe for
// concurrent use.
type Interface interface {
	// Apply makes the table do what d says, in one transaction, or in
	// none when it already does.
	Apply(d Desired) (Result, error)
	// Invalidate makes the next Apply read the table from the kernel
	// again and repair whatever anyone else changed.
	Invalidate()
	// Delete removes the table (routerd cleanup) and nothing else.
	Delete() error
}

// Result reports what an Apply did.
type Result struct {
	// Writes is the number of netlink messages of the transaction (its
	// batch begin and end not counted); 0: nothing was written. A failed
	// transaction wrote nothing (the kernel applies all of it or none).
	Writes int
	// Full: the table was read from the kernel first (the first Apply,
	// the one after an error or after Invalidate).
	Full bool
	// Recreate: the table was missing or not of this layout, so it was
	// deleted and created anew, with its elements, in the same
	// transaction; Reason says why.
	Recreate bool
	Reason   string
	// ElementsAdded and ElementsDeleted count ranges (a CIDR is one).
	ElementsAdded, ElementsDeleted int
	// Skipped are the invalid prefixes of Desired, left out (the rest
	// was applied).
	Skipped []netip.Prefix
}

// backend is where the table lives: the kernel, or the fake's memory.
type backend interface {
	// read returns what the table's sets hold; when the table is missing
	// or not of this layout, it returns nil and why.
	read() (content, string, error)
	// commit applies t in one transaction, all of it or nothing.
	commit(t *tx) error
	// delete removes the table if it exists.
	delete() error
}

// applier computes and applies the transactions; the real table and the
// fake share it, so the fake's counts are the real ones.
type applier struct {
	be backend
	// last is what the table holds as of the last successful Apply, when
	// valid; otherwise (never applied, an error since, Invalidate) the
	// next Apply reads the kernel.
	last  content
	valid bool
}

func (a *applier) apply(d Desired) (Result, error) {
	want, skipped := build(d)
	res := Result{Full: !a.valid, Skipped: skipped}
	have, reason := a.last, ""
	if !a.valid {
		var err error
		if have, reason, err = a.be.read(); err != nil {
			return res, fmt.Errorf("read table %s: %w", TableName, err)
		}
	}
	t := plan(have, want, reason)
	res.Recreate, res.Reason = t.recreate, t.reason
	res.ElementsAdded, res.ElementsDeleted = t.count(t.add), t.count(t.del)
	if !t.empty() {
		if err := a.be.commit(t); err != nil {
			a.valid = false
			return Result{Full: res.Full, Skipped: skipped}, fmt.Errorf("apply table %s (%d messages): %w", TableName, t.messages(), err)
		}
		res.Writes = t.messages()
	}
	a.last, a.valid = want.clone(), true
	return res, nil
}

func (a *applier) invalidate() { a.valid = false }

func (a *applier) delete() error {
	a.valid = false
	if err := a.be.delete(); err != nil {
		return fmt.Errorf("delete table %s: %w", TableName, err)
	}
	return nil
}
