package reconcile

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
)

// drainRecheck is how often draining real servers are looked at again.
const drainRecheck = 5 * time.Second

// Sync makes the kernel hold desired. nodeIPs are the node's addresses (for
// NodePort ownership). A full sync re-reads the kernel first, repairing any
// drift; a partial one trusts what earlier syncs left and only looks at
// virtual services whose desired value changed (by identity). Errors do not
// stop the sync: it applies what it can and returns the errors; the next
// sync then re-reads the kernel.
func (r *Reconciler) Sync(desired model.State, nodeIPs []netip.Addr, full bool) (Result, error) {
	if full || !r.synced {
		if err := r.refresh(desired, nodeIPs); err != nil {
			return Result{}, err
		}
		full = true
	}
	r.want = make(map[model.VSKey]*model.VirtualService, len(desired.Services))
	r.vipRefs = map[netip.Addr]int{}
	for _, vs := range desired.Services {
		r.want[vs.VSKey] = vs
		if vs.Kind != model.NodePort {
			r.vipRefs[vs.Addr]++
		}
	}
	keys := make([]model.VSKey, 0, len(r.want)+len(r.kernel))
	for k := range r.want {
		keys = append(keys, k)
	}
	for k := range r.kernel {
		if r.want[k] == nil {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, model.VSKey.Compare)
	return r.apply(keys, full, true)
}

// Update applies changes to single virtual services (nil: no longer
// wanted) on top of the last sync, in time proportional to the changes. It
// needs an earlier successful Sync; ErrNeedSync says to do one.
func (r *Reconciler) Update(changes map[model.VSKey]*model.VirtualService) (Result, error) {
	if !r.synced {
		return Result{}, ErrNeedSync
	}
	keys := make([]model.VSKey, 0, len(changes))
	for k, vs := range changes {
		keys = append(keys, k)
		if old := r.want[k]; old != nil && old.Kind != model.NodePort {
			if r.vipRefs[old.Addr]--; r.vipRefs[old.Addr] <= 0 {
				delete(r.vipRefs, old.Addr)
			}
		}
		if vs == nil {
			delete(r.want, k)
			continue
		}
		r.want[k] = vs
		if vs.Kind != model.NodePort {
			r.vipRefs[vs.Addr]++
		}
	}
	slices.SortFunc(keys, model.VSKey.Compare)
	return r.apply(keys, false, false)
}

// ErrNeedSync: Update was called before a successful full Sync.
var ErrNeedSync = errors.New("reconcile: a full sync is needed first")

// Programmed returns the wanted virtual services that are in the kernel,
// sorted.
func (r *Reconciler) Programmed() []*model.VirtualService {
	out := make([]*model.VirtualService, 0, len(r.applied))
	for _, vs := range r.applied {
		out = append(out, vs)
	}
	slices.SortFunc(out, func(a, b *model.VirtualService) int { return a.VSKey.Compare(b.VSKey) })
	return out
}

// IsProgrammed reports whether the wanted virtual service at k is in the
// kernel.
func (r *Reconciler) IsProgrammed(k model.VSKey) bool { return r.applied[k] != nil }

// apply makes the kernel match r.want for keys (sorted). allRoutes: every
// proxyd route is checked against the wanted VIPs (full syncs), not only
// the ones of keys.
func (r *Reconciler) apply(keys []model.VSKey, full, allRoutes bool) (Result, error) {
	res := Result{Touched: keys}
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Routes first: they record ownership before the virtual service exists.
	var add []netip.Addr
	for _, k := range keys {
		if vs := r.want[k]; vs != nil && vs.Kind != model.NodePort && !r.vips[vs.Addr] && !slices.Contains(add, vs.Addr) {
			add = append(add, vs.Addr)
		}
	}
	if len(add) > 0 {
		err := r.routes.AddAll(add)
		failed := addrSet(vip.FailedVIPs(err))
		for _, a := range add {
			if !failed[a] {
				r.vips[a] = true
				res.Writes++
			}
		}
		if err != nil {
			note(fmt.Errorf("add VIP routes: %w", err))
		}
	}

	for _, k := range keys {
		vs := r.want[k]
		if vs == nil {
			delete(r.applied, k)
			note(r.deleteVS(k, &res))
			continue
		}
		if vs.Kind != model.NodePort && !r.vips[vs.Addr] {
			delete(r.applied, k) // no route: IPVS would never see its packets
			continue
		}
		if !full && r.applied[k] == vs {
			continue
		}
		if err := r.applyVS(vs, &res); err != nil {
			note(err)
			delete(r.applied, k)
			continue
		}
		r.applied[k] = vs
	}

	note(r.drain(&res))

	// Routes last: a VIP route goes only after its virtual services.
	var del []netip.Addr
	if allRoutes {
		for a := range r.vips {
			if r.vipRefs[a] == 0 {
				del = append(del, a)
			}
		}
	} else {
		for _, k := range keys {
			if r.vips[k.Addr] && r.vipRefs[k.Addr] == 0 && !slices.Contains(del, k.Addr) {
				del = append(del, k.Addr)
			}
		}
	}
	slices.SortFunc(del, netip.Addr.Compare)
	if len(del) > 0 {
		err := r.routes.DeleteAll(del)
		failed := addrSet(vip.FailedVIPs(err))
		for _, a := range del {
			if !failed[a] {
				delete(r.vips, a)
				res.Writes++
			}
		}
		if err != nil {
			note(fmt.Errorf("delete VIP routes: %w", err))
		}
	}

	res.Draining = len(r.draining)
	if res.Draining > 0 {
		res.RecheckAfter = drainRecheck
	}
	if len(errs) > 0 {
		// The next sync must not trust the cache.
		r.synced = false
		return res, errors.Join(errs...)
	}
	return res, nil
}

// deleteVS removes an owned virtual service that is not wanted.
func (r *Reconciler) deleteVS(k model.VSKey, res *Result) error {
	if r.kernel[k] == nil {
		return nil
	}
	if err := r.ipvs.DeleteService(k); err != nil && !errors.Is(err, ipvs.ErrNotFound) {
		return fmt.Errorf("delete virtual service %s: %w", k, err)
	}
	res.Writes++
	delete(r.kernel, k)
	for ref := range r.draining {
		if ref.vs == k {
			delete(r.draining, ref)
		}
	}
	return nil
}

// refresh re-reads the routes and virtual services proxyd owns.
func (r *Reconciler) refresh(desired model.State, nodeIPs []netip.Addr) error {
	addrs, err := r.routes.List()
	if err != nil {
		return fmt.Errorf("list VIP routes: %w", err)
	}
	r.vips = make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		r.vips[a] = true
	}
	entries, err := r.ipvs.List()
	if err != nil {
		return fmt.Errorf("list IPVS services: %w", err)
	}
	node := map[netip.Addr]bool{}
	for _, a := range nodeIPs {
		node[a] = true
	}
	wanted := make(map[model.VSKey]bool, len(desired.Services))
	for _, vs := range desired.Services {
		wanted[vs.VSKey] = true
	}
	r.kernel = make(map[model.VSKey]*kernelVS, len(entries))
	for _, e := range entries {
		owned := r.vips[e.Addr] || wanted[e.VSKey] ||
			(node[e.Addr] && e.Port >= r.cfg.NodePortMin && e.Port <= r.cfg.NodePortMax)
		if !owned {
			continue
		}
		k := &kernelVS{svc: e.Service, dests: make(map[model.DestKey]ipvs.Dest, len(e.Dests))}
		for _, d := range e.Dests {
			k.dests[d.DestKey] = d
		}
		r.kernel[e.VSKey] = k
	}
	r.applied = map[model.VSKey]*model.VirtualService{}
	// Forget drains of real servers that are gone; real servers at weight 0
	// that proxyd does not want (left by an earlier run) drain from now.
	for ref := range r.draining {
		if k := r.kernel[ref.vs]; k == nil || !hasDest(k, ref.dest) {
			delete(r.draining, ref)
		}
	}
	r.synced = true
	return nil
}

func hasDest(k *kernelVS, d model.DestKey) bool {
	_, ok := k.dests[d]
	return ok
}

// applyVS makes one virtual service and its real servers match vs.
func (r *Reconciler) applyVS(vs *model.VirtualService, res *Result) error {
	want := ipvs.Service{VSKey: vs.VSKey, Scheduler: vs.Scheduler, PersistenceTimeout: vs.PersistenceTimeout}
	k := r.kernel[vs.VSKey]
	switch {
	case k == nil:
		if err := r.ipvs.CreateService(want); err != nil {
			return fmt.Errorf("create virtual service %s: %w", vs.VSKey, err)
		}
		res.Writes++
		k = &kernelVS{svc: want, dests: make(map[model.DestKey]ipvs.Dest, len(vs.Dests))}
		r.kernel[vs.VSKey] = k
	case k.svc != want:
		if err := r.ipvs.UpdateService(want); err != nil {
			return fmt.Errorf("update virtual service %s: %w", vs.VSKey, err)
		}
		res.Writes++
		k.svc = want
	}

	for _, d := range vs.Dests {
		delete(r.draining, destRef{vs.VSKey, d.DestKey})
		kd, ok := k.dests[d.DestKey]
		switch {
		case !ok:
			nd := ipvs.Dest{DestKey: d.DestKey, Weight: d.Weight}
			if err := r.ipvs.CreateDest(vs.VSKey, nd); err != nil {
				return fmt.Errorf("add real server %s to %s: %w", d.DestKey, vs.VSKey, err)
			}
			res.Writes++
			k.dests[d.DestKey] = nd
		case kd.Weight != d.Weight || kd.NotMasquerade:
			kd.Weight, kd.NotMasquerade = d.Weight, false
			if err := r.ipvs.UpdateDest(vs.VSKey, kd); err != nil {
				return fmt.Errorf("set weight of %s in %s: %w", d.DestKey, vs.VSKey, err)
			}
			res.Writes++
			k.dests[d.DestKey] = kd
		}
	}
	if len(k.dests) == len(vs.Dests) {
		return nil // every kernel real server is a wanted one
	}
	for _, dk := range sortedDestKeys(k.dests) {
		if _, wanted := slices.BinarySearchFunc(vs.Dests, dk, func(d model.Dest, k model.DestKey) int { return d.DestKey.Compare(k) }); wanted {
			continue
		}
		ref := destRef{vs.VSKey, dk}
		switch {
		case vs.Proto == model.UDP:
			if err := r.ipvs.DeleteDest(vs.VSKey, dk); err != nil && !errors.Is(err, ipvs.ErrNotFound) {
				return fmt.Errorf("remove real server %s from %s: %w", dk, vs.VSKey, err)
			}
			res.Writes++
			delete(k.dests, dk)
			res.RemovedUDP = append(res.RemovedUDP, RemovedDest{VS: vs.VSKey, Dest: dk})
		default:
			// Drained by drain(), which reads the connections first: an
			// idle real server is deleted outright, a busy one set to
			// weight 0.
			if _, ok := r.draining[ref]; !ok {
				r.draining[ref] = r.cfg.Clock.Now()
			}
		}
	}
	return nil
}

// drain deletes the draining real servers whose connections are gone or
// whose time is up. It reads connection counts once per virtual service.
func (r *Reconciler) drain(res *Result) error {
	if len(r.draining) == 0 {
		return nil
	}
	byVS := map[model.VSKey][]model.DestKey{}
	for ref := range r.draining {
		byVS[ref.vs] = append(byVS[ref.vs], ref.dest)
	}
	now := r.cfg.Clock.Now()
	var errs []error
	for _, key := range sortedKeys(byVS) {
		k := r.kernel[key]
		if k == nil {
			continue
		}
		live, err := r.ipvs.ListDests(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("read connections of %s: %w", key, err))
			continue
		}
		byKey := make(map[model.DestKey]ipvs.Dest, len(live))
		for _, d := range live {
			byKey[d.DestKey] = d
		}
		for _, dk := range byVS[key] {
			ref := destRef{key, dk}
			d, present := byKey[dk]
			busy := present && d.ActiveConns+d.InactiveConns > 0 && now.Sub(r.draining[ref]) < r.cfg.DrainTimeout
			switch {
			case busy && d.Weight == 0:
				continue
			case busy:
				d.Weight = 0
				if err := r.ipvs.UpdateDest(key, d); err != nil {
					errs = append(errs, fmt.Errorf("drain real server %s of %s: %w", dk, key, err))
					continue
				}
				res.Writes++
				k.dests[dk] = d
				continue
			case present:
				if err := r.ipvs.DeleteDest(key, dk); err != nil && !errors.Is(err, ipvs.ErrNotFound) {
					errs = append(errs, fmt.Errorf("remove drained real server %s from %s: %w", dk, key, err))
					continue
				}
				res.Writes++
			}
			delete(k.dests, dk)
			delete(r.draining, ref)
		}
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[model.VSKey]V) []model.VSKey {
	keys := make([]model.VSKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, model.VSKey.Compare)
	return keys
}

func sortedDestKeys(m map[model.DestKey]ipvs.Dest) []model.DestKey {
	keys := make([]model.DestKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, model.DestKey.Compare)
	return keys
}

func addrSet(addrs []netip.Addr) map[netip.Addr]bool {
	m := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		m[a] = true
	}
	return m
}
