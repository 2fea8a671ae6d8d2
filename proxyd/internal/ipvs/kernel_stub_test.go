package ipvs

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"testing"

	libipvs "github.com/cloudflare/ipvs"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// Kernel's own logic (empty dumps, repeated entries, the existence check of
// ListDests) over a scripted library client: what no real kernel can be
// made to do on demand.

// stubClient answers Services and Destinations from queues of answers (the
// last one repeats); every other method of libipvs.Client panics through
// the nil embedded interface, so a test notices a request it did not expect.
type stubClient struct {
	libipvs.Client
	services []stubAnswer[libipvs.ServiceExtended]
	dests    []stubAnswer[libipvs.DestinationExtended]
	getErr   error
	calls    map[string]int
}

type stubAnswer[T any] struct {
	items []T
	err   error
}

func next[T any](q *[]stubAnswer[T]) ([]T, error) {
	a := (*q)[0]
	if len(*q) > 1 {
		*q = (*q)[1:]
	}
	return a.items, a.err
}

func (s *stubClient) Services() ([]libipvs.ServiceExtended, error) {
	s.calls["Services"]++
	return next(&s.services)
}

func (s *stubClient) Destinations(libipvs.Service) ([]libipvs.DestinationExtended, error) {
	s.calls["Destinations"]++
	return next(&s.dests)
}

func (s *stubClient) Service(libipvs.Service) (libipvs.ServiceExtended, error) {
	s.calls["Service"]++
	return libipvs.ServiceExtended{}, s.getErr
}

func libSvc(k string, port uint16) libipvs.ServiceExtended {
	s, err := toLibService(Service{VSKey: vsKey(k, port, model.TCP), Scheduler: "rr"})
	if err != nil {
		panic(err)
	}
	return libipvs.ServiceExtended{Service: s}
}

func libDest(d Dest) libipvs.DestinationExtended {
	ld, err := toLibDest(tcpVS, d)
	if err != nil {
		panic(err)
	}
	return libipvs.DestinationExtended{Destination: ld}
}

func stubKernel(s *stubClient) *Kernel {
	s.calls = map[string]int{}
	return &Kernel{c: s}
}

func TestKernelListEmptyTable(t *testing.T) {
	// The library answers an empty dump with os.ErrNotExist.
	s := &stubClient{services: []stubAnswer[libipvs.ServiceExtended]{{err: os.ErrNotExist}}}
	got, err := stubKernel(s).List()
	if err != nil || len(got) != 0 {
		t.Fatalf("List of an empty table = %+v, %v; want nothing", got, err)
	}
}

func TestKernelListKernelENOENTIsAnError(t *testing.T) {
	// A kernel ENOENT is also os.ErrNotExist to errors.Is, but it is not an
	// empty dump.
	s := &stubClient{services: []stubAnswer[libipvs.ServiceExtended]{{err: fmt.Errorf("netlink receive: %w", unix.ENOENT)}}}
	if _, err := stubKernel(s).List(); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("List: %v, want the kernel's ENOENT", err)
	}
}

func TestKernelListRetriesRepeatedEntries(t *testing.T) {
	a, b := libSvc("198.19.0.1", 80), libSvc("198.19.0.2", 80)
	s := &stubClient{
		services: []stubAnswer[libipvs.ServiceExtended]{{items: []libipvs.ServiceExtended{a, b, b}}, {items: []libipvs.ServiceExtended{b, a}}},
		dests: []stubAnswer[libipvs.DestinationExtended]{
			{items: []libipvs.DestinationExtended{libDest(Dest{DestKey: podB, Weight: 1}), libDest(Dest{DestKey: podA, Weight: 2})}},
		},
	}
	got, err := stubKernel(s).List()
	if err != nil {
		t.Fatal(err)
	}
	dests := []Dest{{DestKey: podA, Weight: 2}, {DestKey: podB, Weight: 1}} // sorted
	want := []Entry{
		{Service: Service{VSKey: vsKey("198.19.0.1", 80, model.TCP), Scheduler: "rr"}, Dests: dests},
		{Service: Service{VSKey: vsKey("198.19.0.2", 80, model.TCP), Scheduler: "rr"}, Dests: dests},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("List =\n%s\nwant\n%s", dump(got), dump(want))
	}
	if s.calls["Services"] != 2 {
		t.Fatalf("%d service dumps, want 2 (one repeat, then a clean one)", s.calls["Services"])
	}

	s = &stubClient{services: []stubAnswer[libipvs.ServiceExtended]{{items: []libipvs.ServiceExtended{a, a}}}}
	if _, err := stubKernel(s).List(); !errors.Is(err, ErrInconsistentDump) {
		t.Fatalf("List of dumps that always repeat: %v, want ErrInconsistentDump", err)
	}
	if s.calls["Services"] != dumpAttempts {
		t.Fatalf("%d service dumps, want %d", s.calls["Services"], dumpAttempts)
	}

	d := libDest(Dest{DestKey: podA, Weight: 1})
	s = &stubClient{
		services: []stubAnswer[libipvs.ServiceExtended]{{items: []libipvs.ServiceExtended{a}}},
		dests:    []stubAnswer[libipvs.DestinationExtended]{{items: []libipvs.DestinationExtended{d, d}}},
	}
	if _, err := stubKernel(s).List(); !errors.Is(err, ErrInconsistentDump) {
		t.Fatalf("List with real server dumps that always repeat: %v, want ErrInconsistentDump", err)
	}
}

func TestKernelListDestsTellsEmptyFromMissing(t *testing.T) {
	empty := []stubAnswer[libipvs.DestinationExtended]{{err: os.ErrNotExist}}
	s := &stubClient{dests: empty}
	got, err := stubKernel(s).ListDests(tcpVS)
	if err != nil || got != nil || s.calls["Service"] != 1 {
		t.Fatalf("ListDests of a service without real servers = %+v, %v after %d lookups; want nil, nil after 1", got, err, s.calls["Service"])
	}

	s = &stubClient{dests: empty, getErr: fmt.Errorf("netlink receive: %w", unix.ESRCH)}
	if _, err := stubKernel(s).ListDests(tcpVS); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ListDests of a missing service: %v, want ErrNotFound", err)
	}

	s = &stubClient{dests: []stubAnswer[libipvs.DestinationExtended]{{items: []libipvs.DestinationExtended{libDest(Dest{DestKey: podA})}}}}
	if _, err := stubKernel(s).ListDests(tcpVS); err != nil || s.calls["Service"] != 0 {
		t.Fatalf("ListDests with real servers: %v after %d lookups; want no lookup", err, s.calls["Service"])
	}
}
