package nft

import (
	"fmt"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// backend is where a table lives: the kernel, or the fake's memory.
type backend interface {
	// read returns what the table holds; when the table is missing or its
	// static part is not rs, it returns nil and why.
	read(rs *ruleset) (*content, string, error)
	// commit applies t in one transaction, all of it or nothing.
	commit(rs *ruleset, t *tx) error
	// delete removes the table if it exists.
	delete() error
	// counters reads the group chains' and pending rules' counters.
	counters() (Counters, error)
}

// applier computes and applies the transactions; the real table and the
// fake share it, so the fake's operation counts are the real ones.
type applier struct {
	rs *ruleset
	// cfgErr is a Config that cannot be written; every Apply reports it.
	cfgErr error
	be     backend
	// st is what the table holds as of the last successful Apply or
	// ApplyDelta, when known (valid); otherwise (never applied, an error
	// since, Invalidate) the next Apply reads the kernel.
	st    *state
	valid bool
}

func newApplier(cfg Config, be backend) applier {
	log, err := newLogConfig(cfg)
	if err != nil {
		err = fmt.Errorf("nft config: %w", err)
	}
	return applier{rs: newRuleset(log), cfgErr: err, be: be}
}

func (a *applier) apply(d *model.Datapath) (Result, error) {
	if a.cfgErr != nil {
		return Result{}, a.cfgErr
	}
	if d == nil {
		d = model.NewDatapath()
	}
	want := newState(d)
	if !a.valid {
		have, reason, err := a.be.read(a.rs)
		if err != nil {
			return Result{Full: true}, fmt.Errorf("read table %s: %w", TableName, err)
		}
		return a.commit(plan(a.rs, have, want, reason), want, true)
	}
	// Trusted: the difference from what was written last, as a delta.
	t := a.st.applyDelta(a.st.deltaTo(want))
	return a.commit(t, want, false)
}

func (a *applier) applyDelta(d *model.Datapath, delta *model.Delta) (Result, error) {
	if !a.valid || delta == nil || a.cfgErr != nil {
		return a.apply(d)
	}
	// The state changes before the kernel does: a failed transaction
	// makes it invalid, and the next Apply reads the kernel again.
	t := a.st.applyDelta(delta)
	return a.commit(t, a.st, false)
}

// commit writes t (when it changes anything) and makes next the state.
func (a *applier) commit(t *tx, next *state, full bool) (Result, error) {
	res := t.result(full)
	if !t.empty() {
		if err := a.be.commit(a.rs, t); err != nil {
			a.valid = false
			return Result{Full: full}, fmt.Errorf("apply table %s (%d messages): %w", TableName, t.messages(a.rs), err)
		}
		res.Writes = t.messages(a.rs)
	}
	a.st, a.valid = next, true
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

func (a *applier) counters() (Counters, error) {
	c, err := a.be.counters()
	if err != nil {
		return Counters{}, fmt.Errorf("read counters of table %s: %w", TableName, err)
	}
	return c, nil
}
