package ipvs

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"

	libipvs "github.com/cloudflare/ipvs"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// dumpAttempts bounds the reads of a dump that keeps coming back
// inconsistent (see Kernel.List).
const dumpAttempts = 4

// Kernel is Interface over the kernel's IPVS, through generic netlink
// (github.com/cloudflare/ipvs). It works on the network namespace of the
// thread that called NewKernel, whatever thread later uses it. It is safe
// for concurrent use (the netlink connection serialises requests).
type Kernel struct {
	c libipvs.Client
	// closer closes the netlink socket; the library's Client interface
	// has no Close, its implementation does.
	closer io.Closer
}

var _ Interface = (*Kernel)(nil)

// NewKernel opens IPVS in the calling thread's network namespace. It fails
// with an error wrapping ErrNoIPVS when the kernel has no IPVS, and with
// the kernel's EPERM without CAP_NET_ADMIN.
func NewKernel() (*Kernel, error) {
	c, err := libipvs.New()
	if err != nil {
		// The generic netlink controller answers ENOENT for a family
		// nobody registered (ip_vs not built, not loadable).
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("ipvs: %w: %w", ErrNoIPVS, err)
		}
		return nil, fmt.Errorf("ipvs: open generic netlink: %w", err)
	}
	k := &Kernel{c: c}
	k.closer, _ = c.(io.Closer)
	// One request proves the family answers us: IPVS requests need
	// CAP_NET_ADMIN, and failing here is clearer than at the first sync.
	if _, err := c.Info(); err != nil {
		_ = k.Close()
		return nil, fmt.Errorf("ipvs: ask the kernel for its IPVS version: %w", err)
	}
	return k, nil
}

// Close releases the netlink socket.
func (k *Kernel) Close() error {
	if k.closer == nil {
		return nil
	}
	return k.closer.Close()
}

// List is part of Interface. It costs one dump of the services and one of
// the real servers per service, sorted by key.
//
// IPVS dumps are not atomic: the kernel fills each netlink message under its
// lock but resumes the next one by position, and it never sets
// NLM_F_DUMP_INTR (nor could github.com/cloudflare/ipvs report it: it drops
// the headers). A write by someone else between two messages can therefore
// repeat or skip an entry. A repeat is detected and the dump read again;
// a skip cannot be seen, and the next full sync repairs what it caused.
func (k *Kernel) List() ([]Entry, error) {
	svcs, err := k.services()
	if err != nil {
		return nil, fmt.Errorf("ipvs: list virtual services: %w", err)
	}
	entries := make([]Entry, 0, len(svcs))
	for _, ls := range svcs {
		s, ok := fromLibService(ls.Service)
		if !ok {
			continue // fwmark services and what proxyd has no name for
		}
		dests, err := k.dests(ls.Service)
		if err != nil {
			return nil, fmt.Errorf("ipvs: list real servers of %s: %w", s.VSKey, err)
		}
		entries = append(entries, Entry{Service: s, Dests: dests})
	}
	slices.SortFunc(entries, func(a, b Entry) int { return a.VSKey.Compare(b.VSKey) })
	return entries, nil
}

// ListDests is part of Interface. A service without real servers and a
// service that does not exist give the same empty dump; only then is the
// service itself asked for, to tell them apart.
func (k *Kernel) ListDests(key model.VSKey) ([]Dest, error) {
	ls, err := toLibServiceKey(key)
	if err != nil {
		return nil, fmt.Errorf("ipvs: list real servers of %s: %w", key, err)
	}
	dests, err := k.dests(ls)
	if err != nil {
		return nil, fmt.Errorf("ipvs: list real servers of %s: %w", key, err)
	}
	if len(dests) == 0 {
		if _, err := k.c.Service(ls); err != nil {
			return nil, reqGetService.wrap("list real servers of "+key.String(), err)
		}
	}
	return dests, nil
}

// CreateService is part of Interface. The kernel loads the module of a
// scheduler nobody used yet during the request, holding IPVS's global
// mutex: for lblc and lblcr, whose modules register per-namespace state,
// that can deadlock with a namespace being torn down (TestKernelSchedulers
// has the stacks), so proxyd does not offer them.
func (k *Kernel) CreateService(s Service) error {
	what := "create virtual service " + s.VSKey.String()
	ls, err := toLibService(s)
	if err != nil {
		return fmt.Errorf("ipvs: %s: %w", what, err)
	}
	if err := k.c.CreateService(ls); err != nil {
		return reqCreateService.wrap(what, err)
	}
	return nil
}

// UpdateService is part of Interface.
func (k *Kernel) UpdateService(s Service) error {
	what := "update virtual service " + s.VSKey.String()
	ls, err := toLibService(s)
	if err != nil {
		return fmt.Errorf("ipvs: %s: %w", what, err)
	}
	if err := k.c.UpdateService(ls); err != nil {
		return reqUpdateService.wrap(what, err)
	}
	return nil
}

// DeleteService is part of Interface. The kernel deletes its real servers
// with it.
func (k *Kernel) DeleteService(key model.VSKey) error {
	what := "delete virtual service " + key.String()
	ls, err := toLibServiceKey(key)
	if err != nil {
		return fmt.Errorf("ipvs: %s: %w", what, err)
	}
	if err := k.c.RemoveService(ls); err != nil {
		return reqDeleteService.wrap(what, err)
	}
	return nil
}

// CreateDest is part of Interface.
func (k *Kernel) CreateDest(key model.VSKey, d Dest) error {
	what := fmt.Sprintf("add real server %s to %s", d.DestKey, key)
	ls, ld, err := libServiceDest(key, d)
	if err != nil {
		return fmt.Errorf("ipvs: %s: %w", what, err)
	}
	if err := k.c.CreateDestination(ls, ld); err != nil {
		return reqCreateDest.wrap(what, err)
	}
	return nil
}

// UpdateDest is part of Interface.
func (k *Kernel) UpdateDest(key model.VSKey, d Dest) error {
	what := fmt.Sprintf("update real server %s of %s", d.DestKey, key)
	ls, ld, err := libServiceDest(key, d)
	if err != nil {
		return fmt.Errorf("ipvs: %s: %w", what, err)
	}
	if err := k.c.UpdateDestination(ls, ld); err != nil {
		return reqUpdateDest.wrap(what, err)
	}
	return nil
}

// DeleteDest is part of Interface.
func (k *Kernel) DeleteDest(key model.VSKey, d model.DestKey) error {
	what := fmt.Sprintf("delete real server %s of %s", d, key)
	ls, ld, err := libServiceDest(key, Dest{DestKey: d})
	if err != nil {
		return fmt.Errorf("ipvs: %s: %w", what, err)
	}
	if err := k.c.RemoveDestination(ls, ld); err != nil {
		return reqDeleteDest.wrap(what, err)
	}
	return nil
}

func libServiceDest(key model.VSKey, d Dest) (libipvs.Service, libipvs.Destination, error) {
	ls, err := toLibServiceKey(key)
	if err != nil {
		return ls, libipvs.Destination{}, err
	}
	ld, err := toLibDest(key, d)
	return ls, ld, err
}

// services dumps the virtual services, again while the dump repeats one.
func (k *Kernel) services() ([]libipvs.ServiceExtended, error) {
	type id struct {
		addr   netip.Addr
		port   uint16
		proto  libipvs.Protocol
		fwmark uint32
		family libipvs.AddressFamily
	}
	for attempt := 1; ; attempt++ {
		svcs, err := k.c.Services()
		if emptyDump(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		seen := make(map[id]bool, len(svcs))
		repeated := false
		for _, s := range svcs {
			i := id{s.Address, s.Port, s.Protocol, s.FWMark, s.Family}
			repeated = repeated || seen[i]
			seen[i] = true
		}
		if !repeated {
			return svcs, nil
		}
		if attempt == dumpAttempts {
			return nil, fmt.Errorf("%w (a service came twice in %d dumps)", ErrInconsistentDump, attempt)
		}
	}
}

// dests dumps the real servers of ls, sorted by key, again while the dump
// repeats one. No real servers is nil.
func (k *Kernel) dests(ls libipvs.Service) ([]Dest, error) {
	for attempt := 1; ; attempt++ {
		lds, err := k.c.Destinations(ls)
		if emptyDump(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		dests := make([]Dest, 0, len(lds))
		for _, ld := range lds {
			dests = append(dests, fromLibDest(ld))
		}
		slices.SortFunc(dests, func(a, b Dest) int { return a.DestKey.Compare(b.DestKey) })
		repeated := false
		for i := 1; i < len(dests); i++ {
			repeated = repeated || dests[i].DestKey == dests[i-1].DestKey
		}
		if !repeated {
			return dests, nil
		}
		if attempt == dumpAttempts {
			return nil, fmt.Errorf("%w (a real server came twice in %d dumps)", ErrInconsistentDump, attempt)
		}
	}
}

// emptyDump: github.com/cloudflare/ipvs answers a dump with no entries
// with os.ErrNotExist itself (not wrapped), which is how it is told apart
// from a kernel ENOENT (errors.Is(ENOENT, os.ErrNotExist) holds too).
func emptyDump(err error) bool {
	return err == os.ErrNotExist //nolint:errorlint // identity on purpose, see above
}
