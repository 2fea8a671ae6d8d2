package nft

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

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
	// counters reads the deny chains' and pending rules' counters.
	counters() (Counters, error)
}

// applier computes and applies the transactions; the real table and the
// fake share it, so the fake's operation counts are the real ones.
type applier struct {
	rs *ruleset
	// cfgErr is a Config that cannot be written; every Apply reports it.
	cfgErr error
	be     backend
	// last is what the table holds as of the last successful Apply, when
	// known (valid); otherwise (never applied, an error since, Invalidate)
	// the next Apply reads the kernel.
	last  *model.Datapath
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
	var t *tx
	full := !a.valid
	if full {
		have, reason, err := a.be.read(a.rs)
		if err != nil {
			return Result{Full: true}, fmt.Errorf("read table %s: %w", TableName, err)
		}
		t = plan(a.rs, have, encode(d), reason)
	} else {
		t = planDelta(delta(a.last, d))
	}
	res := t.result(full)
	if !t.empty() {
		if err := a.be.commit(a.rs, t); err != nil {
			a.valid = false
			return Result{Full: full}, fmt.Errorf("apply table %s (%d messages): %w", TableName, t.messages(a.rs), err)
		}
		res.Writes = t.messages(a.rs)
	}
	// Kept as a copy: the caller may change its maps.
	a.last = clone(d)
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

func (a *applier) counters() (Counters, error) {
	c, err := a.be.counters()
	if err != nil {
		return Counters{}, fmt.Errorf("read counters of table %s: %w", TableName, err)
	}
	return c, nil
}

// clone copies d deeply enough that later changes of the caller's maps and
// slices do not reach it.
func clone(d *model.Datapath) *model.Datapath {
	return &model.Datapath{
		LocalCIDRs:   slices.Clone(d.LocalCIDRs),
		KnownLocal:   maps.Clone(d.KnownLocal),
		IngressGroup: maps.Clone(d.IngressGroup),
		EgressGroup:  maps.Clone(d.EgressGroup),
		PodIdent:     maps.Clone(d.PodIdent),
		Regions:      slices.Clone(d.Regions),
		IngressAllow: maps.Clone(d.IngressAllow),
		EgressAllow:  maps.Clone(d.EgressAllow),
		IngressAny:   maps.Clone(d.IngressAny),
		EgressAny:    maps.Clone(d.EgressAny),
	}
}

// delta returns the content to add and to delete to go from old to new,
// comparing the Datapaths' maps directly: a sync that changes little
// encodes only what changed. It gives what diffing encode(old) and
// encode(new) would (the tests hold it to that).
func delta(old, new *model.Datapath) (add, del content) {
	add, del = newContent(), newContent()
	// Few elements, merged or filtered as a whole: diffed encoded.
	for _, f := range []func(elems, *model.Datapath){
		func(c elems, d *model.Datapath) { cidrElems(c, d.LocalCIDRs) },
		func(c elems, d *model.Datapath) { regionElems(c, d.Regions) },
	} {
		o, n := elems{}, elems{}
		f(o, old)
		f(n, new)
		for set, es := range n {
			for e := range es {
				if _, ok := o[set][e]; !ok {
					add.elems.add(set, e)
				}
			}
		}
		for set, es := range o {
			for e := range es {
				if _, ok := n[set][e]; !ok {
					del.elems.add(set, e)
				}
			}
		}
	}
	diffSet(old.KnownLocal, new.KnownLocal, func(a netip.Addr, c content) {
		if set, e, ok := knownElem(a); ok {
			c.elems.add(set, e)
		}
	}, add, del)
	diffMap(old.PodIdent, new.PodIdent, func(a netip.Addr, id model.ID, c content) {
		if set, e, ok := identElem(a, id); ok {
			c.elems.add(set, e)
		}
	}, add, del)
	for _, dir := range []model.Direction{model.Ingress, model.Egress} {
		diffMap(groupMap(old, dir), groupMap(new, dir), func(a netip.Addr, g model.ID, c content) {
			if gs, ge, ds, de, ok := groupElems(dir, a, g); ok {
				c.elems.add(gs, ge)
				c.elems.add(ds, de)
			}
		}, add, del)
		oldGroups, newGroups := chainsInUse(old, dir), chainsInUse(new, dir)
		for name := range newGroups {
			if _, ok := oldGroups[name]; !ok {
				add.chains[name] = struct{}{}
			}
		}
		for name := range oldGroups {
			if _, ok := newGroups[name]; !ok {
				del.chains[name] = struct{}{}
			}
		}
		diffSet(allowMap(old, dir), allowMap(new, dir), func(a model.Allow, c content) {
			if set, e, ok := allowElem(dir, a); ok {
				c.elems.add(set, e)
			}
		}, add, del)
		diffSet(anyMap(old, dir), anyMap(new, dir), func(a model.AnyAllow, c content) {
			if set, e, ok := anyElem(dir, a); ok {
				c.elems.add(set, e)
			}
		}, add, del)
	}
	return add, del
}

// chainsInUse are the deny chains d needs in direction dir: those of the
// groups of its (valid) addresses.
func chainsInUse(d *model.Datapath, dir model.Direction) map[string]struct{} {
	out := map[string]struct{}{}
	for a, g := range groupMap(d, dir) {
		if canonical(a) {
			out[denyChainName(dir, g)] = struct{}{}
		}
	}
	return out
}

// diffSet calls put(k, add) for keys only new has and put(k, del) for keys
// only old has. It walks the larger map and looks each key up in the other
// (a cache miss each, at 100k elements the cost of a sync); the smaller
// one is walked too only when the counts say it has keys of its own.
func diffSet[K comparable](old, new map[K]struct{}, put func(K, content), add, del content) {
	diffMap(old, new, func(k K, _ struct{}, c content) { put(k, c) }, add, del)
}

// diffMap is diffSet for maps: a key whose value changed is deleted with
// its old value and added with its new one.
func diffMap[K, V comparable](old, new map[K]V, put func(K, V, content), add, del content) {
	// walk reports the entries of a missing from b (or different there)
	// to out, and how many it found in b the same.
	walk := func(a, b map[K]V, out content) int {
		same := 0
		for k, v := range a {
			if w, ok := b[k]; ok && w == v {
				same++
				continue
			}
			put(k, v, out)
		}
		return same
	}
	if len(new) >= len(old) {
		if walk(new, old, add) < len(old) {
			walk(old, new, del)
		}
		return
	}
	if walk(old, new, del) < len(new) {
		walk(new, old, add)
	}
}
