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
// virtual services whose desired value changed. Errors do not stop the
// sync: it applies what it can and returns the first error; the caller
// then retries with a full sync.
func (r *Reconciler) Sync(desired model.State, nodeIPs []netip.Addr, full bool) (Result, error) {
	var res Result
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if full || !r.synced {
		if err := r.refresh(desired, nodeIPs); err != nil {
			return res, err
		}
	}

	want := make(map[model.VSKey]*model.VirtualService, len(desired.Services))
	wantVIPs := map[netip.Addr]bool{}
	for _, vs := range desired.Services {
		want[vs.VSKey] = vs
		if vs.Kind != model.NodePort {
			wantVIPs[vs.Addr] = true
		}
	}

	// Routes first: they record ownership before the virtual service exists.
	var add []netip.Addr
	for _, a := range sortedAddrs(wantVIPs) {
		if !r.vips[a] {
			add = append(add, a)
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

	for _, vs := range desired.Services {
		if vs.Kind != model.NodePort && !r.vips[vs.Addr] {
			continue // no route: IPVS would never see its packets
		}
		if !full && r.applied[vs.VSKey] == vs {
			res.Programmed = append(res.Programmed, vs)
			continue
		}
		if err := r.applyVS(vs, &res); err != nil {
			note(err)
			delete(r.applied, vs.VSKey)
			continue
		}
		r.applied[vs.VSKey] = vs
		res.Programmed = append(res.Programmed, vs)
	}

	for _, key := range sortedKeys(r.kernel) {
		if want[key] != nil {
			continue
		}
		if err := r.ipvs.DeleteService(key); err != nil && !errors.Is(err, ipvs.ErrNotFound) {
			note(fmt.Errorf("delete virtual service %s: %w", key, err))
			continue
		}
		res.Writes++
		delete(r.kernel, key)
		delete(r.applied, key)
		for ref := range r.draining {
			if ref.vs == key {
				delete(r.draining, ref)
			}
		}
	}

	note(r.drain(&res))

	// Routes last: a VIP route goes only after its virtual services.
	var del []netip.Addr
	for _, a := range sortedAddrs(r.vips) {
		if !wantVIPs[a] {
			del = append(del, a)
		}
	}
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
		k = &kernelVS{svc: want, dests: map[model.DestKey]ipvs.Dest{}}
		r.kernel[vs.VSKey] = k
	case k.svc != want:
		if err := r.ipvs.UpdateService(want); err != nil {
			return fmt.Errorf("update virtual service %s: %w", vs.VSKey, err)
		}
		res.Writes++
		k.svc = want
	}

	wanted := make(map[model.DestKey]bool, len(vs.Dests))
	for _, d := range vs.Dests {
		wanted[d.DestKey] = true
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
		case kd.Weight != d.Weight:
			kd.Weight = d.Weight
			if err := r.ipvs.UpdateDest(vs.VSKey, kd); err != nil {
				return fmt.Errorf("set weight of %s in %s: %w", d.DestKey, vs.VSKey, err)
			}
			res.Writes++
			k.dests[d.DestKey] = kd
		}
	}
	for _, dk := range sortedDestKeys(k.dests) {
		if wanted[dk] {
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

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}
