package ipvs

import (
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// Fake is an in-memory Interface with the kernel's semantics as Kernel
// presents them: creating what exists fails with ErrExists, changing or
// deleting what does not with ErrNotFound, an unknown scheduler with
// ErrUnknownScheduler, what the kernel refuses with ErrInvalid; deleting a
// virtual service deletes its real servers. It records what it is asked
// (see Count and Writes) so reconciler tests can assert that a sync with
// nothing to do writes nothing. It is safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	services map[model.VSKey]*fakeService
	counts   map[Op]int
	writes   []Write
	failures map[Op][]error
}

type fakeService struct {
	svc   Service
	dests map[model.DestKey]Dest
}

var _ Interface = (*Fake)(nil)

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{
		services: map[model.VSKey]*fakeService{},
		counts:   map[Op]int{},
		failures: map[Op][]error{},
	}
}

// Op is one method of Interface.
type Op uint8

// The methods of Interface.
const (
	OpList Op = iota + 1
	OpListDests
	OpCreateService
	OpUpdateService
	OpDeleteService
	OpCreateDest
	OpUpdateDest
	OpDeleteDest
)

func (o Op) String() string {
	switch o {
	case OpList:
		return "List"
	case OpListDests:
		return "ListDests"
	case OpCreateService:
		return "CreateService"
	case OpUpdateService:
		return "UpdateService"
	case OpDeleteService:
		return "DeleteService"
	case OpCreateDest:
		return "CreateDest"
	case OpUpdateDest:
		return "UpdateDest"
	case OpDeleteDest:
		return "DeleteDest"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// IsWrite reports whether o changes the table.
func (o Op) IsWrite() bool { return o >= OpCreateService && o <= OpDeleteDest }

// Write is one write the Fake applied, with what it was given: Service for
// the service writes (only its key for DeleteService), VS and Dest for the
// real server writes (only Dest's key for DeleteDest).
type Write struct {
	Op      Op
	Service Service
	VS      model.VSKey
	Dest    Dest
}

// String is a stable one-line form for golden logs, e.g.
// "CreateDest 198.19.0.1:80/TCP 198.18.128.2:8080 weight 1".
func (w Write) String() string {
	switch w.Op {
	case OpCreateService, OpUpdateService:
		s := fmt.Sprintf("%s %s %s", w.Op, w.Service.VSKey, w.Service.Scheduler)
		if w.Service.PersistenceTimeout > 0 {
			s += fmt.Sprintf(" persistent %ds", w.Service.PersistenceTimeout)
		}
		return s
	case OpDeleteService:
		return fmt.Sprintf("%s %s", w.Op, w.Service.VSKey)
	case OpCreateDest, OpUpdateDest:
		return fmt.Sprintf("%s %s %s weight %d", w.Op, w.VS, w.Dest.DestKey, w.Dest.Weight)
	case OpDeleteDest:
		return fmt.Sprintf("%s %s %s", w.Op, w.VS, w.Dest.DestKey)
	}
	return w.Op.String()
}

// Count is how many times op was called since NewFake or Reset, failed
// calls included (each would be one kernel request).
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

// WriteCount is the number of write calls, failed ones included.
func (f *Fake) WriteCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for op, c := range f.counts {
		if op.IsWrite() {
			n += c
		}
	}
	return n
}

// Writes are the writes applied since NewFake or Reset, in order (failed
// calls change nothing and are not logged; Count has them).
func (f *Fake) Writes() []Write {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

// Reset forgets the counts, the write log and failures not yet returned;
// the table stays.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.counts)
	f.writes = nil
	clear(f.failures)
}

// FailNext makes the next call of op return err (as is) and change
// nothing; calls queue up one failure each.
func (f *Fake) FailNext(op Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[op] = append(f.failures[op], err)
}

// Seed puts entries into the table as if someone had written them before
// (a restarted proxyd finds them), connection counts included, without
// counting or logging anything. It fails like the creates would.
func (f *Fake) Seed(entries ...Entry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range entries {
		if err := f.createService(e.Service); err != nil {
			return err
		}
		for _, d := range e.Dests {
			if err := f.createDest(e.VSKey, d); err != nil {
				return err
			}
			f.services[e.VSKey].dests[d.DestKey] = d
		}
	}
	return nil
}

// SetConns sets the connection counts of a real server, as traffic would.
func (f *Fake) SetConns(vs model.VSKey, d model.DestKey, active, inactive uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.services[vs]
	if s == nil {
		return fmt.Errorf("ipvs fake: set connections of %s in %s: virtual service %w", d, vs, ErrNotFound)
	}
	cur, ok := s.dests[d]
	if !ok {
		return fmt.Errorf("ipvs fake: set connections of %s in %s: real server %w", d, vs, ErrNotFound)
	}
	cur.ActiveConns, cur.InactiveConns = active, inactive
	s.dests[d] = cur
	return nil
}

// call counts a call of op and returns the failure queued for it, if any.
// f.mu is held.
func (f *Fake) call(op Op) error {
	f.counts[op]++
	q := f.failures[op]
	if len(q) == 0 {
		return nil
	}
	err := q[0]
	if len(q) == 1 {
		delete(f.failures, op)
	} else {
		f.failures[op] = q[1:]
	}
	return err
}

// List is part of Interface.
func (f *Fake) List() ([]Entry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(OpList); err != nil {
		return nil, err
	}
	keys := slices.SortedFunc(maps.Keys(f.services), model.VSKey.Compare)
	entries := make([]Entry, 0, len(keys))
	for _, k := range keys {
		s := f.services[k]
		entries = append(entries, Entry{Service: s.svc, Dests: s.sortedDests()})
	}
	return entries, nil
}

// ListDests is part of Interface.
func (f *Fake) ListDests(vs model.VSKey) ([]Dest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(OpListDests); err != nil {
		return nil, err
	}
	s := f.services[vs]
	if s == nil {
		return nil, fmt.Errorf("ipvs fake: list real servers of %s: virtual service %w", vs, ErrNotFound)
	}
	return s.sortedDests(), nil
}

// sortedDests is a copy of the real servers, sorted by key; nil when there
// are none, as Kernel answers.
func (s *fakeService) sortedDests() []Dest {
	if len(s.dests) == 0 {
		return nil
	}
	keys := slices.SortedFunc(maps.Keys(s.dests), model.DestKey.Compare)
	out := make([]Dest, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.dests[k])
	}
	return out
}

// CreateService is part of Interface.
func (f *Fake) CreateService(svc Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(OpCreateService); err != nil {
		return err
	}
	if err := f.createService(svc); err != nil {
		return err
	}
	f.writes = append(f.writes, Write{Op: OpCreateService, Service: svc})
	return nil
}

func (f *Fake) createService(svc Service) error {
	if err := checkFakeService(svc); err != nil {
		return fmt.Errorf("ipvs fake: create virtual service %s: %w", svc.VSKey, err)
	}
	if f.services[svc.VSKey] != nil {
		return fmt.Errorf("ipvs fake: create virtual service %s: %w", svc.VSKey, ErrExists)
	}
	f.services[svc.VSKey] = &fakeService{svc: svc, dests: map[model.DestKey]Dest{}}
	return nil
}

// UpdateService is part of Interface.
func (f *Fake) UpdateService(svc Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(OpUpdateService); err != nil {
		return err
	}
	if err := checkFakeService(svc); err != nil {
		return fmt.Errorf("ipvs fake: update virtual service %s: %w", svc.VSKey, err)
	}
	s := f.services[svc.VSKey]
	if s == nil {
		return fmt.Errorf("ipvs fake: update virtual service %s: %w", svc.VSKey, ErrNotFound)
	}
	s.svc = svc
	f.writes = append(f.writes, Write{Op: OpUpdateService, Service: svc})
	return nil
}

// DeleteService is part of Interface.
func (f *Fake) DeleteService(vs model.VSKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(OpDeleteService); err != nil {
		return err
	}
	if err := checkService(Service{VSKey: vs}); err != nil {
		return fmt.Errorf("ipvs fake: delete virtual service %s: %w", vs, err)
	}
	if f.services[vs] == nil {
		return fmt.Errorf("ipvs fake: delete virtual service %s: %w", vs, ErrNotFound)
	}
	delete(f.services, vs)
	f.writes = append(f.writes, Write{Op: OpDeleteService, Service: Service{VSKey: vs}})
	return nil
}

// CreateDest is part of Interface. A new real server has no connections,
// whatever d says.
func (f *Fake) CreateDest(vs model.VSKey, d Dest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(OpCreateDest); err != nil {
		return err
	}
	if err := f.createDest(vs, d); err != nil {
		return err
	}
	f.writes = append(f.writes, Write{Op: OpCreateDest, VS: vs, Dest: d})
	return nil
}

func (f *Fake) createDest(vs model.VSKey, d Dest) error {
	s, err := f.destService("add real server", vs, d)
	if err != nil {
		return err
	}
	if _, ok := s.dests[d.DestKey]; ok {
		return fmt.Errorf("ipvs fake: add real server %s to %s: %w", d.DestKey, vs, ErrExists)
	}
	s.dests[d.DestKey] = Dest{DestKey: d.DestKey, Weight: d.Weight}
	return nil
}

// UpdateDest is part of Interface. Only the weight changes; connection
// counts are the kernel's (SetConns).
func (f *Fake) UpdateDest(vs model.VSKey, d Dest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(OpUpdateDest); err != nil {
		return err
	}
	s, err := f.destService("update real server", vs, d)
	if err != nil {
		return err
	}
	cur, ok := s.dests[d.DestKey]
	if !ok {
		return fmt.Errorf("ipvs fake: update real server %s of %s: real server %w", d.DestKey, vs, ErrNotFound)
	}
	// Like the kernel's, an update writes proxyd's forwarding method.
	cur.Weight, cur.NotMasquerade = d.Weight, false
	s.dests[d.DestKey] = cur
	f.writes = append(f.writes, Write{Op: OpUpdateDest, VS: vs, Dest: d})
	return nil
}

// DeleteDest is part of Interface.
func (f *Fake) DeleteDest(vs model.VSKey, dk model.DestKey) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(OpDeleteDest); err != nil {
		return err
	}
	s, err := f.destService("delete real server", vs, Dest{DestKey: dk})
	if err != nil {
		return err
	}
	if _, ok := s.dests[dk]; !ok {
		return fmt.Errorf("ipvs fake: delete real server %s of %s: real server %w", dk, vs, ErrNotFound)
	}
	delete(s.dests, dk)
	f.writes = append(f.writes, Write{Op: OpDeleteDest, VS: vs, Dest: Dest{DestKey: dk}})
	return nil
}

// destService validates a real server request as the kernel does and
// returns the virtual service it names.
func (f *Fake) destService(what string, vs model.VSKey, d Dest) (*fakeService, error) {
	if err := checkService(Service{VSKey: vs}); err != nil {
		return nil, fmt.Errorf("ipvs fake: %s %s of %s: %w", what, d.DestKey, vs, err)
	}
	if err := checkDest(vs, d.DestKey, d.Weight); err != nil {
		return nil, fmt.Errorf("ipvs fake: %s %s of %s: %w", what, d.DestKey, vs, err)
	}
	s := f.services[vs]
	if s == nil {
		return nil, fmt.Errorf("ipvs fake: %s %s of %s: virtual service %w", what, d.DestKey, vs, ErrNotFound)
	}
	return s, nil
}

// checkFakeService is checkService plus the scheduler check the kernel
// makes when it loads the scheduler's module.
func checkFakeService(s Service) error {
	if err := checkService(s); err != nil {
		return err
	}
	if !kernelScheduler(s.Scheduler) {
		return fmt.Errorf("scheduler %q: %w", s.Scheduler, ErrUnknownScheduler)
	}
	return nil
}

// kernelScheduler reports whether Linux 6.1 has a scheduler of that name
// (net/netfilter/ipvs/ip_vs_<name>.c).
func kernelScheduler(name string) bool {
	switch name {
	case "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh":
		return true
	}
	return false
}
