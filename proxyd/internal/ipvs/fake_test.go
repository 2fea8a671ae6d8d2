package ipvs

// Address plan of this package's tests: virtual services on 198.19.0.0/16
// and fd00:19::/64, real servers (pods) on 198.18.128.0/17 and fd00:18::/64.

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

func vsKey(addr string, port uint16, proto model.Protocol) model.VSKey {
	return model.VSKey{Addr: netip.MustParseAddr(addr), Port: port, Proto: proto}
}

func destKey(addr string, port uint16) model.DestKey {
	return model.DestKey{Addr: netip.MustParseAddr(addr), Port: port}
}

var (
	tcpVS  = vsKey("198.19.0.1", 80, model.TCP)
	udpVS  = vsKey("198.19.0.1", 53, model.UDP)
	v6VS   = vsKey("fd00:19::1", 443, model.SCTP)
	podA   = destKey("198.18.128.2", 8080)
	podB   = destKey("198.18.129.2", 8080)
	pod6   = destKey("fd00:18::2", 8443)
	tcpSvc = Service{VSKey: tcpVS, Scheduler: "rr"}
)

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v, want one wrapping %q", err, kind)
	}
}

func writeLog(f *Fake) string {
	var b strings.Builder
	for _, w := range f.Writes() {
		b.WriteString(w.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestFakeServiceLifecycle(t *testing.T) {
	f := NewFake()
	mustOK(t, f.CreateService(tcpSvc))
	wantErr(t, f.CreateService(tcpSvc), ErrExists)

	persistent := Service{VSKey: tcpVS, Scheduler: "wrr", PersistenceTimeout: 10800}
	mustOK(t, f.UpdateService(persistent))
	wantErr(t, f.UpdateService(Service{VSKey: udpVS, Scheduler: "rr"}), ErrNotFound)

	got, err := f.List()
	mustOK(t, err)
	if want := []Entry{{Service: persistent}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}

	mustOK(t, f.DeleteService(tcpVS))
	wantErr(t, f.DeleteService(tcpVS), ErrNotFound)
	got, err = f.List()
	mustOK(t, err)
	if len(got) != 0 {
		t.Fatalf("List after delete = %+v, want nothing", got)
	}
}

func TestFakeDestLifecycle(t *testing.T) {
	f := NewFake()
	wantErr(t, f.CreateDest(tcpVS, Dest{DestKey: podA, Weight: 1}), ErrNotFound) // no service
	mustOK(t, f.CreateService(tcpSvc))
	mustOK(t, f.CreateDest(tcpVS, Dest{DestKey: podB, Weight: 1}))
	mustOK(t, f.CreateDest(tcpVS, Dest{DestKey: podA, Weight: 1, ActiveConns: 9})) // counts are the kernel's
	wantErr(t, f.CreateDest(tcpVS, Dest{DestKey: podA, Weight: 2}), ErrExists)

	mustOK(t, f.UpdateDest(tcpVS, Dest{DestKey: podB, Weight: 0}))
	wantErr(t, f.UpdateDest(tcpVS, Dest{DestKey: destKey("198.18.130.2", 8080), Weight: 1}), ErrNotFound)
	wantErr(t, f.UpdateDest(udpVS, Dest{DestKey: podB, Weight: 1}), ErrNotFound)

	got, err := f.ListDests(tcpVS)
	mustOK(t, err)
	want := []Dest{{DestKey: podA, Weight: 1}, {DestKey: podB, Weight: 0}} // sorted by key
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListDests = %+v, want %+v", got, want)
	}
	_, err = f.ListDests(udpVS)
	wantErr(t, err, ErrNotFound)

	mustOK(t, f.DeleteDest(tcpVS, podB))
	wantErr(t, f.DeleteDest(tcpVS, podB), ErrNotFound)
	wantErr(t, f.DeleteDest(udpVS, podB), ErrNotFound)

	// Deleting the service takes its real servers along.
	mustOK(t, f.DeleteService(tcpVS))
	mustOK(t, f.CreateService(tcpSvc))
	got, err = f.ListDests(tcpVS)
	mustOK(t, err)
	if got != nil {
		t.Fatalf("real servers of a re-created service: %+v, want none", got)
	}
}

func TestFakeRefusesWhatTheKernelRefuses(t *testing.T) {
	f := NewFake()
	mustOK(t, f.CreateService(tcpSvc))
	for name, err := range map[string]error{
		"no address":         f.CreateService(Service{VSKey: model.VSKey{Port: 80, Proto: model.TCP}, Scheduler: "rr"}),
		"zone":               f.CreateService(Service{VSKey: vsKey("fe80::1%eth0", 80, model.TCP), Scheduler: "rr"}),
		"IPv4-mapped":        f.CreateService(Service{VSKey: vsKey("::ffff:198.19.0.2", 80, model.TCP), Scheduler: "rr"}),
		"protocol":           f.CreateService(Service{VSKey: vsKey("198.19.0.2", 80, 0), Scheduler: "rr"}),
		"dest of the family": f.CreateDest(tcpVS, Dest{DestKey: pod6, Weight: 1}),
		"weight":             f.CreateDest(tcpVS, Dest{DestKey: podA, Weight: 1 << 31}),
		"update weight":      f.UpdateDest(tcpVS, Dest{DestKey: podA, Weight: 1 << 31}),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: error %v, want ErrInvalid", name, err)
		}
	}
	wantErr(t, f.CreateService(Service{VSKey: udpVS, Scheduler: "nope"}), ErrUnknownScheduler)
	wantErr(t, f.UpdateService(Service{VSKey: tcpVS, Scheduler: ""}), ErrUnknownScheduler)
	if got := f.Writes(); len(got) != 1 {
		t.Fatalf("writes %v: refused calls must change nothing", got)
	}
}

func TestFakeListIsSortedAndACopy(t *testing.T) {
	f := NewFake()
	for _, s := range []Service{
		{VSKey: v6VS, Scheduler: "mh"},
		{VSKey: udpVS, Scheduler: "rr"},
		tcpSvc,
		{VSKey: vsKey("198.19.0.1", 53, model.TCP), Scheduler: "rr"},
	} {
		mustOK(t, f.CreateService(s))
	}
	mustOK(t, f.CreateDest(v6VS, Dest{DestKey: pod6, Weight: 3}))
	got, err := f.List()
	mustOK(t, err)
	var keys []string
	for _, e := range got {
		keys = append(keys, e.VSKey.String())
	}
	want := "198.19.0.1:53/TCP 198.19.0.1:53/UDP 198.19.0.1:80/TCP [fd00:19::1]:443/SCTP"
	if strings.Join(keys, " ") != want {
		t.Fatalf("List order %v, want %s", keys, want)
	}
	got[3].Dests[0].Weight = 99
	again, _ := f.ListDests(v6VS)
	if again[0].Weight != 3 {
		t.Fatal("changing a listed entry changed the fake")
	}
}

func TestFakeRecordsCallsAndWrites(t *testing.T) {
	f := NewFake()
	mustOK(t, f.CreateService(tcpSvc))
	mustOK(t, f.CreateService(Service{VSKey: udpVS, Scheduler: "sh", PersistenceTimeout: 60}))
	_ = f.CreateService(tcpSvc) // fails: counted, not logged
	mustOK(t, f.CreateDest(tcpVS, Dest{DestKey: podA, Weight: 1}))
	mustOK(t, f.UpdateDest(tcpVS, Dest{DestKey: podA, Weight: 0}))
	mustOK(t, f.DeleteDest(tcpVS, podA))
	mustOK(t, f.UpdateService(Service{VSKey: tcpVS, Scheduler: "lc"}))
	mustOK(t, f.DeleteService(udpVS))
	_, _ = f.List()
	_, _ = f.ListDests(tcpVS)
	_, _ = f.ListDests(tcpVS)

	wantLog := `CreateService 198.19.0.1:80/TCP rr
CreateService 198.19.0.1:53/UDP sh persistent 60s
CreateDest 198.19.0.1:80/TCP 198.18.128.2:8080 weight 1
UpdateDest 198.19.0.1:80/TCP 198.18.128.2:8080 weight 0
DeleteDest 198.19.0.1:80/TCP 198.18.128.2:8080
UpdateService 198.19.0.1:80/TCP lc
DeleteService 198.19.0.1:53/UDP
`
	if got := writeLog(f); got != wantLog {
		t.Fatalf("write log:\n%s\nwant:\n%s", got, wantLog)
	}
	wantCounts := map[Op]int{
		OpCreateService: 3, OpUpdateService: 1, OpDeleteService: 1,
		OpCreateDest: 1, OpUpdateDest: 1, OpDeleteDest: 1,
		OpList: 1, OpListDests: 2,
	}
	if got := f.Counts(); !reflect.DeepEqual(got, wantCounts) {
		t.Fatalf("counts %v, want %v", got, wantCounts)
	}
	if got := f.WriteCount(); got != 8 {
		t.Fatalf("WriteCount %d, want 8", got)
	}

	f.Reset()
	if f.WriteCount() != 0 || len(f.Writes()) != 0 || f.Count(OpList) != 0 {
		t.Fatalf("after Reset: counts %v, writes %v", f.Counts(), f.Writes())
	}
	if got, _ := f.List(); len(got) != 1 {
		t.Fatalf("Reset must keep the table; List = %+v", got)
	}
}

func TestFakeConnectionCounts(t *testing.T) {
	f := NewFake()
	mustOK(t, f.CreateService(tcpSvc))
	mustOK(t, f.CreateDest(tcpVS, Dest{DestKey: podA, Weight: 1}))
	mustOK(t, f.SetConns(tcpVS, podA, 3, 7))
	// A weight change (draining) keeps the connections.
	mustOK(t, f.UpdateDest(tcpVS, Dest{DestKey: podA, Weight: 0}))
	got, err := f.ListDests(tcpVS)
	mustOK(t, err)
	if want := []Dest{{DestKey: podA, Weight: 0, ActiveConns: 3, InactiveConns: 7}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ListDests = %+v, want %+v", got, want)
	}
	wantErr(t, f.SetConns(tcpVS, podB, 1, 1), ErrNotFound)
	wantErr(t, f.SetConns(udpVS, podA, 1, 1), ErrNotFound)
	if n := f.WriteCount(); n != 3 { // create service, create dest, update dest
		t.Fatalf("SetConns must not count as a write; WriteCount %d", n)
	}
}

func TestFakeFailNext(t *testing.T) {
	f := NewFake()
	boom := errors.New("boom")
	f.FailNext(OpCreateService, boom)
	f.FailNext(OpCreateService, ErrExists)
	if err := f.CreateService(tcpSvc); err != boom {
		t.Fatalf("first create: %v, want boom", err)
	}
	wantErr(t, f.CreateService(tcpSvc), ErrExists)
	mustOK(t, f.CreateService(tcpSvc)) // queue drained
	if got, want := f.Count(OpCreateService), 3; got != want {
		t.Fatalf("count %d, want %d", got, want)
	}
	if len(f.Writes()) != 1 {
		t.Fatalf("failed calls were logged: %v", f.Writes())
	}
	f.FailNext(OpList, boom)
	if _, err := f.List(); err != boom {
		t.Fatalf("List: %v, want boom", err)
	}
	f.FailNext(OpList, boom)
	f.Reset()
	if _, err := f.List(); err != nil {
		t.Fatalf("Reset must drop pending failures; List: %v", err)
	}
}

func TestFakeSeed(t *testing.T) {
	f := NewFake()
	seed := []Entry{
		{Service: Service{VSKey: tcpVS, Scheduler: "rr"}, Dests: []Dest{{DestKey: podA, Weight: 0, InactiveConns: 4}}},
		{Service: Service{VSKey: v6VS, Scheduler: "sh", PersistenceTimeout: 30}},
	}
	mustOK(t, f.Seed(seed...))
	if n := f.WriteCount(); n != 0 || len(f.Writes()) != 0 {
		t.Fatalf("Seed recorded %d writes", n)
	}
	got, err := f.List()
	mustOK(t, err)
	if !reflect.DeepEqual(got, seed) {
		t.Fatalf("List = %+v, want the seed %+v", got, seed)
	}
	wantErr(t, f.Seed(seed[1]), ErrExists)
}

// dump is entries as text, for failure messages.
func dump(es []Entry) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("  %s %s persistent=%d\n", e.VSKey, e.Scheduler, e.PersistenceTimeout)
		for _, d := range e.Dests {
			s += fmt.Sprintf("    %s weight=%d active=%d inactive=%d\n", d.DestKey, d.Weight, d.ActiveConns, d.InactiveConns)
		}
	}
	if s == "" {
		return "  (nothing)"
	}
	return s
}
