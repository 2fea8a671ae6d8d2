package nft

import (
	"fmt"
	"slices"
)

// Interface is what proxyd does to its nftables table. proxyd's sync loop
// is its only caller: implementations need not be safe for concurrent use.
type Interface interface {
	// Apply makes the table hold d, in one transaction, or in none when
	// the table already does.
	Apply(d Desired) (Result, error)
	// Delete removes the table (proxyd cleanup) and nothing else.
	Delete() error
	// Invalidate makes the next Apply a full one: it reads the table from
	// the kernel again and repairs whatever anyone else changed.
	Invalidate()
}

// Result reports what an Apply did.
type Result struct {
	// Writes is the number of netlink messages of the transaction (its
	// batch begin and end not counted); 0: nothing was written. A failed
	// transaction wrote nothing (the kernel applies all of it or none).
	Writes int
	Ops    Ops
}

// Ops counts what an Apply changed.
type Ops struct {
	// Full: the table was read from the kernel first (the first Apply,
	// the one after an error or after Invalidate).
	Full bool
	// Recreate: the table was missing or its static part (chains, rules,
	// set definitions) was not proxyd's, so it was deleted and created
	// anew, with its elements, in the same transaction; Reason says why.
	Recreate bool
	Reason   string
	// Objects created by a Recreate.
	Sets, Chains, Rules int
	// Elements added and deleted (a range is one element).
	ElementsAdded, ElementsDeleted int
}

// backend is where a table lives: the kernel, or the fake's memory.
type backend interface {
	// read returns what the table's sets hold; when the table is missing
	// or its static part is not rs, it returns nil and why.
	read(rs *ruleset) (content, string, error)
	// commit applies t in one transaction, all of it or nothing.
	commit(rs *ruleset, t *tx) error
	// delete removes the table if it exists.
	delete() error
}

// applier computes and applies the transactions; the real table and the
// fake share it, so the fake's operation counts are the real ones.
type applier struct {
	rs *ruleset
	be backend
	// last is what the table holds as of the last successful Apply, when
	// known (valid); otherwise (never applied, an error since, Invalidate)
	// the next Apply reads the kernel.
	last  Desired
	valid bool
}

func newApplier(be backend) applier {
	return applier{rs: newRuleset(), be: be}
}

func (a *applier) apply(d Desired) (Result, error) {
	var t *tx
	full := !a.valid
	if full {
		have, reason, err := a.be.read(a.rs)
		if err != nil {
			return Result{Ops: Ops{Full: true}}, fmt.Errorf("read table %s: %w", TableName, err)
		}
		t = plan(a.rs, have, encode(d), reason)
	} else if add, del, ok := delta(a.last, d); ok {
		t = planDelta(add, del)
	} else {
		t = plan(a.rs, encode(a.last), encode(d), "")
	}
	res := Result{Ops: t.ops(a.rs)}
	res.Ops.Full = full
	if !t.empty() {
		if err := a.be.commit(a.rs, t); err != nil {
			a.valid = false
			return Result{Ops: Ops{Full: full}}, fmt.Errorf("apply table %s (%d messages): %w", TableName, t.messages(a.rs), err)
		}
		res.Writes = t.messages(a.rs)
	}
	// Kept as a copy: the caller may reuse its slices.
	a.last = Desired{
		VIPs:       slices.Clone(d.VIPs),
		LocalVIPs:  slices.Clone(d.LocalVIPs),
		Restricted: slices.Clone(d.Restricted),
		Allowed:    slices.Clone(d.Allowed),
		PodCIDRs:   slices.Clone(d.PodCIDRs),
	}
	a.valid = true
	return res, nil
}

func (a *applier) delete() error {
	a.valid = false
	if err := a.be.delete(); err != nil {
		return fmt.Errorf("delete table %s: %w", TableName, err)
	}
	return nil
}

func (a *applier) invalidate() { a.valid = false }
