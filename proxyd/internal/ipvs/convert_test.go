package ipvs

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	libipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

func TestProtocolConversion(t *testing.T) {
	for _, c := range []struct {
		model model.Protocol
		lib   libipvs.Protocol
	}{{model.TCP, 6}, {model.UDP, 17}, {model.SCTP, 132}} {
		got, err := toLibProtocol(c.model)
		if err != nil || got != c.lib {
			t.Errorf("toLibProtocol(%s) = %d, %v; want %d", c.model, got, err, c.lib)
		}
		back, ok := fromLibProtocol(c.lib)
		if !ok || back != c.model {
			t.Errorf("fromLibProtocol(%d) = %s, %v; want %s", c.lib, back, ok, c.model)
		}
	}
	if _, err := toLibProtocol(model.Protocol(9)); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown protocol: %v, want ErrInvalid", err)
	}
	if _, ok := fromLibProtocol(1); ok { // ICMP
		t.Error("fromLibProtocol(1) accepted")
	}
}

func TestToLibService(t *testing.T) {
	for _, c := range []struct {
		in   Service
		want libipvs.Service
	}{{
		in: Service{VSKey: tcpVS, Scheduler: "rr"},
		want: libipvs.Service{
			Address: tcpVS.Addr, Port: 80, Protocol: libipvs.TCP, Family: libipvs.INET,
			Netmask: netmask.MaskFrom4([4]byte{255, 255, 255, 255}), Scheduler: "rr",
		},
	}, {
		in: Service{VSKey: udpVS, Scheduler: "sh", PersistenceTimeout: 10800},
		want: libipvs.Service{
			Address: udpVS.Addr, Port: 53, Protocol: libipvs.UDP, Family: libipvs.INET,
			Netmask: netmask.MaskFrom(32, 32), Scheduler: "sh",
			Flags: libipvs.ServicePersistent, Timeout: 10800,
		},
	}, {
		in: Service{VSKey: v6VS, Scheduler: "mh"},
		want: libipvs.Service{
			Address: v6VS.Addr, Port: 443, Protocol: libipvs.SCTP, Family: libipvs.INET6,
			Netmask: netmask.MaskFrom(128, 128), Scheduler: "mh",
		},
	}} {
		got, err := toLibService(c.in)
		if err != nil {
			t.Errorf("toLibService(%+v): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("toLibService(%+v) =\n%+v, want\n%+v", c.in, got, c.want)
		}
		// What the kernel lists back converts to what was written: the
		// kernel adds ServiceHashed, which proxyd ignores.
		listed := got
		listed.Flags |= libipvs.ServiceHashed
		back, ok := fromLibService(listed)
		if !ok || back != c.in {
			t.Errorf("fromLibService(toLibService(%+v)) = %+v, %v", c.in, back, ok)
		}
	}
}

func TestToLibServiceRefuses(t *testing.T) {
	for _, k := range []model.VSKey{
		{Port: 80, Proto: model.TCP},
		vsKey("fe80::1%eth0", 80, model.TCP),
		vsKey("::ffff:198.19.0.1", 80, model.TCP),
		vsKey("198.19.0.1", 80, 0),
	} {
		if _, err := toLibService(Service{VSKey: k, Scheduler: "rr"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("toLibService(%s): %v, want ErrInvalid", k, err)
		}
	}
}

func TestFromLibServiceSkips(t *testing.T) {
	ok := libipvs.Service{Address: tcpVS.Addr, Port: 80, Protocol: libipvs.TCP, Family: libipvs.INET, Scheduler: "rr"}
	if _, good := fromLibService(ok); !good {
		t.Fatal("a plain TCP service was skipped")
	}
	fwmark := ok
	fwmark.FWMark, fwmark.Address = 7, netip.Addr{}
	icmp := ok
	icmp.Protocol = 1
	wrongFamily := ok
	wrongFamily.Family = libipvs.INET6
	timeoutOnly := ok
	timeoutOnly.Timeout = 300 // not persistent: the timeout means nothing
	for name, s := range map[string]libipvs.Service{"fwmark": fwmark, "icmp": icmp, "family": wrongFamily} {
		if got, good := fromLibService(s); good {
			t.Errorf("%s service converted to %+v, want it skipped", name, got)
		}
	}
	if got, _ := fromLibService(timeoutOnly); got.PersistenceTimeout != 0 {
		t.Errorf("non-persistent service with a timeout: PersistenceTimeout %d, want 0", got.PersistenceTimeout)
	}
}

func TestDestConversion(t *testing.T) {
	got, err := toLibDest(tcpVS, Dest{DestKey: podA, Weight: 5, ActiveConns: 3})
	want := libipvs.Destination{Address: podA.Addr, Port: 8080, Family: libipvs.INET, FwdMethod: libipvs.Masquerade, Weight: 5}
	if err != nil || got != want {
		t.Fatalf("toLibDest = %+v, %v; want %+v", got, err, want)
	}
	got6, err := toLibDest(v6VS, Dest{DestKey: pod6, Weight: 1})
	if err != nil || got6.Family != libipvs.INET6 || got6.FwdMethod != libipvs.Masquerade {
		t.Fatalf("toLibDest IPv6 = %+v, %v", got6, err)
	}
	for name, c := range map[string]struct {
		vs model.VSKey
		d  Dest
	}{
		"IPv6 dest of IPv4 service": {tcpVS, Dest{DestKey: pod6, Weight: 1}},
		"IPv4 dest of IPv6 service": {v6VS, Dest{DestKey: podA, Weight: 1}},
		"weight above int32":        {tcpVS, Dest{DestKey: podA, Weight: 1 << 31}},
		"no address":                {tcpVS, Dest{Weight: 1}},
	} {
		if _, err := toLibDest(c.vs, c.d); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}

	listed := libipvs.DestinationExtended{Destination: want, ActiveConnections: 2, InactiveConnections: 9, PersistentConnections: 1}
	if got, want := fromLibDest(listed), (Dest{DestKey: podA, Weight: 5, ActiveConns: 2, InactiveConns: 9}); got != want {
		t.Fatalf("fromLibDest = %+v, want %+v", got, want)
	}
}

// TestErrorKinds pins what each kernel answer means per request
// (net/netfilter/ipvs/ip_vs_ctl.c); the VM tests check the kernel agrees.
func TestErrorKinds(t *testing.T) {
	// The kernel's errno arrives wrapped in the netlink library's error.
	kernel := func(e unix.Errno) error { return fmt.Errorf("netlink receive: %w", e) }
	for _, c := range []struct {
		req   request
		errno unix.Errno
		want  error
	}{
		{reqCreateService, unix.EEXIST, ErrExists},
		{reqCreateService, unix.ENOENT, ErrUnknownScheduler},
		{reqCreateService, unix.EINVAL, ErrInvalid},
		{reqUpdateService, unix.ESRCH, ErrNotFound},
		{reqUpdateService, unix.ENOENT, ErrUnknownScheduler},
		{reqDeleteService, unix.ESRCH, ErrNotFound},
		{reqCreateDest, unix.ESRCH, ErrNotFound},
		{reqCreateDest, unix.EEXIST, ErrExists},
		{reqCreateDest, unix.ERANGE, ErrInvalid},
		{reqUpdateDest, unix.ESRCH, ErrNotFound},
		{reqUpdateDest, unix.ENOENT, ErrNotFound},
		{reqDeleteDest, unix.ESRCH, ErrNotFound},
		{reqDeleteDest, unix.ENOENT, ErrNotFound},
		{reqGetService, unix.ESRCH, ErrNotFound},
		{reqDeleteService, unix.EPERM, nil},
		{reqUpdateService, unix.EEXIST, nil},
		{reqDeleteService, unix.ENOENT, nil},
	} {
		err := c.req.wrap("op", kernel(c.errno))
		if got := c.req.kind(kernel(c.errno)); got != c.want {
			t.Errorf("request %d, %v: kind %v, want %v", c.req, c.errno, got, c.want)
		}
		if !errors.Is(err, c.errno) {
			t.Errorf("request %d: %v does not wrap the errno %v", c.req, err, c.errno)
		}
		if c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("request %d: %v does not wrap %v", c.req, err, c.want)
		}
	}
}
