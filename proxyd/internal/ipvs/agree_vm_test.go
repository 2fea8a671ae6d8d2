//go:build vm

package ipvs

import (
	"errors"
	"slices"
	"testing"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// TestKernelAgreesWithFake runs one script of writes, good and bad, on the
// kernel and on the Fake: every step must fail the same way on both, and
// both must then list exactly what was written (the round trip the
// reconciler relies on when it compares what it listed with what it wants).
func TestKernelAgreesWithFake(t *testing.T) {
	k, _ := newKernel(t)
	f := NewFake()

	tcp4 := vsKey("198.19.0.1", 80, model.TCP)
	udp4 := vsKey("198.19.0.1", 53, model.UDP)
	sctp4 := vsKey("198.19.0.2", 9, model.SCTP)
	tcp6 := vsKey("fd00:19::2", 80, model.TCP)
	udp6 := vsKey("fd00:19::2", 53, model.UDP)
	sctp6 := vsKey("fd00:19::1", 443, model.SCTP)
	missing := vsKey("198.19.0.99", 80, model.TCP)
	mapped := vsKey("::ffff:198.19.0.3", 80, model.TCP)
	a, b, c := destKey("198.18.128.2", 8080), destKey("198.18.129.2", 8080), destKey("198.18.130.2", 8081)
	a6, b6 := destKey("fd00:18::2", 8443), destKey("fd00:18::3", 8443)
	svc := func(k model.VSKey, sched string, persist uint32) Service {
		return Service{VSKey: k, Scheduler: sched, PersistenceTimeout: persist}
	}
	dest := func(k model.DestKey, w uint32) Dest { return Dest{DestKey: k, Weight: w} }

	steps := []struct {
		name string
		do   func(Interface) error
		want error
	}{
		{"create tcp4", func(i Interface) error { return i.CreateService(svc(tcp4, "rr", 0)) }, nil},
		{"create tcp4 again", func(i Interface) error { return i.CreateService(svc(tcp4, "wrr", 0)) }, ErrExists},
		{"create udp4 persistent", func(i Interface) error { return i.CreateService(svc(udp4, "sh", 10800)) }, nil},
		{"create sctp4", func(i Interface) error { return i.CreateService(svc(sctp4, "lc", 0)) }, nil},
		{"create tcp6 persistent", func(i Interface) error { return i.CreateService(svc(tcp6, "wlc", 60)) }, nil},
		{"create udp6", func(i Interface) error { return i.CreateService(svc(udp6, "dh", 0)) }, nil},
		{"create sctp6", func(i Interface) error { return i.CreateService(svc(sctp6, "mh", 0)) }, nil},
		{"create, unknown scheduler", func(i Interface) error { return i.CreateService(svc(missing, "nodenet-nope", 0)) }, ErrUnknownScheduler},
		{"create, IPv4-mapped", func(i Interface) error { return i.CreateService(svc(mapped, "rr", 0)) }, ErrInvalid},
		{"update missing", func(i Interface) error { return i.UpdateService(svc(missing, "rr", 0)) }, ErrNotFound},
		{"update tcp4 persistent", func(i Interface) error { return i.UpdateService(svc(tcp4, "wrr", 300)) }, nil},
		{"update udp4 not persistent", func(i Interface) error { return i.UpdateService(svc(udp4, "sed", 0)) }, nil},
		{"update, unknown scheduler", func(i Interface) error { return i.UpdateService(svc(sctp4, "nodenet-nope", 0)) }, ErrUnknownScheduler},
		{"delete missing", func(i Interface) error { return i.DeleteService(missing) }, ErrNotFound},
		{"add a", func(i Interface) error { return i.CreateDest(tcp4, dest(a, 1)) }, nil},
		{"add b", func(i Interface) error { return i.CreateDest(tcp4, dest(b, 2)) }, nil},
		{"add c weight 0", func(i Interface) error { return i.CreateDest(tcp4, dest(c, 0)) }, nil},
		{"add a again", func(i Interface) error { return i.CreateDest(tcp4, dest(a, 5)) }, ErrExists},
		{"add to missing", func(i Interface) error { return i.CreateDest(missing, dest(a, 1)) }, ErrNotFound},
		{"add IPv6 to IPv4", func(i Interface) error { return i.CreateDest(tcp4, dest(a6, 1)) }, ErrInvalid},
		{"add weight 2^31", func(i Interface) error { return i.CreateDest(udp4, dest(a, 1<<31)) }, ErrInvalid},
		{"weight of b", func(i Interface) error { return i.UpdateDest(tcp4, dest(b, 7)) }, nil},
		{"weight of missing dest", func(i Interface) error { return i.UpdateDest(udp4, dest(b, 7)) }, ErrNotFound},
		{"weight in missing service", func(i Interface) error { return i.UpdateDest(missing, dest(b, 7)) }, ErrNotFound},
		{"delete c", func(i Interface) error { return i.DeleteDest(tcp4, c) }, nil},
		{"delete c again", func(i Interface) error { return i.DeleteDest(tcp4, c) }, ErrNotFound},
		{"delete in missing service", func(i Interface) error { return i.DeleteDest(missing, c) }, ErrNotFound},
		{"add a6", func(i Interface) error { return i.CreateDest(sctp6, dest(a6, 1)) }, nil},
		{"add b6", func(i Interface) error { return i.CreateDest(sctp6, dest(b6, 3)) }, nil},
		{"add b6 to udp6", func(i Interface) error { return i.CreateDest(udp6, dest(b6, 1)) }, nil},
		{"add a to udp4", func(i Interface) error { return i.CreateDest(udp4, dest(a, 1)) }, nil},
		{"delete udp6 with its dest", func(i Interface) error { return i.DeleteService(udp6) }, nil},
		{"delete udp6 again", func(i Interface) error { return i.DeleteService(udp6) }, ErrNotFound},
		{"list dests of udp6", func(i Interface) error { _, err := i.ListDests(udp6); return err }, ErrNotFound},
	}
	kinds := []error{ErrExists, ErrNotFound, ErrUnknownScheduler, ErrInvalid}
	kindOf := func(err error) error {
		for _, kind := range kinds {
			if errors.Is(err, kind) {
				return kind
			}
		}
		return err
	}
	for _, s := range steps {
		kerr, ferr := s.do(k), s.do(f)
		if kindOf(kerr) != s.want || kindOf(ferr) != s.want {
			t.Errorf("%s: kernel %v, fake %v; want %v", s.name, kerr, ferr, s.want)
		}
	}

	want := []Entry{
		{Service: svc(udp4, "sed", 0), Dests: []Dest{dest(a, 1)}},
		{Service: svc(tcp4, "wrr", 300), Dests: []Dest{dest(a, 1), dest(b, 7)}},
		{Service: svc(sctp4, "lc", 0)},
		{Service: svc(sctp6, "mh", 0), Dests: []Dest{dest(a6, 1), dest(b6, 3)}},
		{Service: svc(tcp6, "wlc", 60)},
	}
	wantList(t, k, want)
	wantList(t, f, want)
	for _, e := range want {
		got, err := k.ListDests(e.VSKey)
		if err != nil || !slices.Equal(got, e.Dests) {
			t.Errorf("ListDests(%s) = %+v, %v; want %+v", e.VSKey, got, err, e.Dests)
		}
	}
}
