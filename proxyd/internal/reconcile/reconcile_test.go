package reconcile

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
)

// Address plan: node 198.18.0.10, ClusterIPs 198.19.0.0/16, pods
// 198.18.128.0/17; foreign IPVS services on 198.18.250.0/24.

var nodeIPs = []netip.Addr{netip.MustParseAddr("198.18.0.10")}

type env struct {
	t      *testing.T
	ipvs   *ipvs.Fake
	routes *vip.Fake
	clock  *testingclock.FakeClock
	r      *Reconciler
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, ipvs: ipvs.NewFake(), routes: vip.NewFake(), clock: testingclock.NewFakeClock(time.Unix(1_000_000, 0))}
	e.r = e.restart()
	return e
}

// restart returns a fresh reconciler over the same kernel, as a restarted
// proxyd has.
func (e *env) restart() *Reconciler {
	return New(Config{DrainTimeout: time.Minute, Clock: e.clock}, e.ipvs, e.routes)
}

func (e *env) sync(st model.State, full bool) Result {
	e.t.Helper()
	res, err := e.r.Sync(st, nodeIPs, full)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

func (e *env) resetCounts() {
	e.ipvs.Reset()
	e.routes.Reset()
}

// kernelWrites is every write either fake saw since the last reset.
func (e *env) kernelWrites() int { return e.ipvs.WriteCount() + e.routes.RouteWrites() }

func (e *env) entry(key model.VSKey) *ipvs.Entry {
	e.t.Helper()
	all, err := e.ipvs.List()
	if err != nil {
		e.t.Fatal(err)
	}
	for i := range all {
		if all[i].VSKey == key {
			return &all[i]
		}
	}
	return nil
}

func key(addr string, port uint16, p model.Protocol) model.VSKey {
	return model.VSKey{Addr: netip.MustParseAddr(addr), Port: port, Proto: p}
}

func dest(addr string, port uint16) model.Dest {
	return model.Dest{DestKey: model.DestKey{Addr: netip.MustParseAddr(addr), Port: port}, Weight: 1}
}

func vs(k model.VSKey, kind model.Kind, dests ...model.Dest) *model.VirtualService {
	return &model.VirtualService{VSKey: k, Scheduler: "rr", Dests: dests, Kind: kind,
		Service: types.NamespacedName{Namespace: "default", Name: "web"}}
}

func state(vss ...*model.VirtualService) model.State {
	slices.SortFunc(vss, func(a, b *model.VirtualService) int { return a.VSKey.Compare(b.VSKey) })
	return model.State{Services: vss}
}

func TestColdSyncThenNothing(t *testing.T) {
	e := newEnv(t)
	web := vs(key("198.19.0.10", 80, model.TCP), model.ClusterIP, dest("198.18.128.5", 8080), dest("198.18.129.5", 8080))
	dns := vs(key("198.19.0.53", 53, model.UDP), model.ClusterIP, dest("198.18.128.6", 53))
	np := vs(key("198.18.0.10", 30080, model.TCP), model.NodePort, dest("198.18.128.5", 8080))
	st := state(web, dns, np)

	res := e.sync(st, true)
	// 2 routes (the NodePort needs none) + 3 services + 4 real servers.
	if res.Writes != 9 || e.kernelWrites() != 9 {
		t.Fatalf("cold sync: %d writes reported, %d seen; want 9", res.Writes, e.kernelWrites())
	}
	if e.routes.Count(vip.OpAddAll) != 1 || e.routes.Count(vip.OpAdd) != 0 {
		t.Fatalf("routes not added in one batch: %v", e.routes.Counts())
	}
	if len(e.r.Programmed()) != 3 {
		t.Fatalf("programmed %d, want 3", len(e.r.Programmed()))
	}
	got := e.entry(web.VSKey)
	if got == nil || got.Scheduler != "rr" || len(got.Dests) != 2 || got.Dests[0].Weight != 1 {
		t.Fatalf("kernel has %+v", got)
	}

	// The same objects again: not even a read.
	e.resetCounts()
	if res := e.sync(st, false); res.Writes != 0 || len(e.r.Programmed()) != 3 {
		t.Fatalf("repeated partial sync: %+v", res)
	}
	if n := e.ipvs.Count(ipvs.OpList) + e.ipvs.Count(ipvs.OpListDests) + e.routes.Count(vip.OpList); n != 0 {
		t.Fatalf("a partial sync with nothing changed read the kernel %d times", n)
	}
	// A full sync reads, and writes nothing.
	if res := e.sync(st, true); res.Writes != 0 || e.kernelWrites() != 0 {
		t.Fatalf("repeated full sync wrote %d", e.kernelWrites())
	}
	// Neither does a restarted proxyd with equal (not identical) objects.
	e.r = e.restart()
	e.resetCounts()
	copies := state(vs(web.VSKey, model.ClusterIP, web.Dests...), vs(dns.VSKey, model.ClusterIP, dns.Dests...), vs(np.VSKey, model.NodePort, np.Dests...))
	if res := e.sync(copies, true); res.Writes != 0 || e.kernelWrites() != 0 || len(e.r.Programmed()) != 3 {
		t.Fatalf("restart: %d writes, %+v", e.kernelWrites(), res)
	}
}

func TestMinimalOperationsPerChange(t *testing.T) {
	k := key("198.19.0.10", 80, model.TCP)
	base := vs(k, model.ClusterIP, dest("198.18.128.5", 8080), dest("198.18.129.5", 8080))
	for _, tc := range []struct {
		name string
		next *model.VirtualService
		want map[ipvs.Op]int
	}{
		{"endpoint added", vs(k, model.ClusterIP, dest("198.18.128.5", 8080), dest("198.18.129.5", 8080), dest("198.18.130.5", 8080)),
			map[ipvs.Op]int{ipvs.OpCreateDest: 1}},
		{"idle endpoint removed", vs(k, model.ClusterIP, dest("198.18.128.5", 8080)),
			map[ipvs.Op]int{ipvs.OpListDests: 1, ipvs.OpDeleteDest: 1}},
		{"scheduler changed", func() *model.VirtualService {
			v := vs(k, model.ClusterIP, base.Dests...)
			v.Scheduler = "lc"
			return v
		}(), map[ipvs.Op]int{ipvs.OpUpdateService: 1}},
		{"affinity on", func() *model.VirtualService {
			v := vs(k, model.ClusterIP, base.Dests...)
			v.PersistenceTimeout = 10800
			return v
		}(), map[ipvs.Op]int{ipvs.OpUpdateService: 1}},
		{"same content, new object", vs(k, model.ClusterIP, base.Dests...), map[ipvs.Op]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.sync(state(base), true)
			e.resetCounts()
			e.sync(state(tc.next), false)
			got := e.ipvs.Counts()
			for op, n := range got {
				if n == 0 {
					delete(got, op)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("ops %v, want %v", got, tc.want)
			}
			for op, n := range tc.want {
				if got[op] != n {
					t.Fatalf("ops %v, want %v", got, tc.want)
				}
			}
			if e.routes.RouteWrites() != 0 {
				t.Fatalf("%d route writes for a change that keeps the VIP", e.routes.RouteWrites())
			}
		})
	}
}

func TestDrainingRealServers(t *testing.T) {
	e := newEnv(t)
	k := key("198.19.0.10", 80, model.TCP)
	a, b := dest("198.18.128.5", 8080), dest("198.18.129.5", 8080)
	e.sync(state(vs(k, model.ClusterIP, a, b)), true)
	if err := e.ipvs.SetConns(k, b.DestKey, 2, 1); err != nil {
		t.Fatal(err)
	}

	res := e.sync(state(vs(k, model.ClusterIP, a)), false)
	got := e.entry(k)
	if len(got.Dests) != 2 || got.Dests[1].Weight != 0 || res.Draining != 1 || res.RecheckAfter <= 0 {
		t.Fatalf("b not draining at weight 0: %+v, %+v", got.Dests, res)
	}
	// Open connections keep it while the timeout runs.
	e.clock.Step(30 * time.Second)
	if res := e.sync(state(vs(k, model.ClusterIP, a)), false); res.Draining != 1 || len(e.entry(k).Dests) != 2 {
		t.Fatalf("drained early: %+v", res)
	}
	// Connections gone: removed.
	if err := e.ipvs.SetConns(k, b.DestKey, 0, 0); err != nil {
		t.Fatal(err)
	}
	if res := e.sync(state(vs(k, model.ClusterIP, a)), false); res.Draining != 0 || len(e.entry(k).Dests) != 1 {
		t.Fatalf("not removed once idle: %+v %+v", res, e.entry(k).Dests)
	}

	// A second endpoint whose connections never end goes at the timeout.
	c := dest("198.18.130.5", 8080)
	e.sync(state(vs(k, model.ClusterIP, a, c)), false)
	if err := e.ipvs.SetConns(k, c.DestKey, 5, 0); err != nil {
		t.Fatal(err)
	}
	e.sync(state(vs(k, model.ClusterIP, a)), false)
	e.clock.Step(time.Minute)
	if res := e.sync(state(vs(k, model.ClusterIP, a)), false); res.Draining != 0 || len(e.entry(k).Dests) != 1 {
		t.Fatalf("not removed at the drain timeout: %+v", res)
	}
}

func TestEndpointBackWhileDraining(t *testing.T) {
	e := newEnv(t)
	k := key("198.19.0.10", 80, model.SCTP)
	a, b := dest("198.18.128.5", 80), dest("198.18.129.5", 80)
	e.sync(state(vs(k, model.ClusterIP, a, b)), true)
	_ = e.ipvs.SetConns(k, b.DestKey, 1, 0)
	e.sync(state(vs(k, model.ClusterIP, a)), false)
	res := e.sync(state(vs(k, model.ClusterIP, a, b)), false)
	if got := e.entry(k).Dests; got[1].Weight != 1 || res.Draining != 0 {
		t.Fatalf("returning endpoint: %+v, draining %d", got, res.Draining)
	}
}

func TestUDPRealServersGoAtOnce(t *testing.T) {
	e := newEnv(t)
	k := key("198.19.0.53", 53, model.UDP)
	a, b := dest("198.18.128.6", 53), dest("198.18.129.6", 53)
	e.sync(state(vs(k, model.ClusterIP, a, b)), true)
	_ = e.ipvs.SetConns(k, b.DestKey, 0, 3)
	res := e.sync(state(vs(k, model.ClusterIP, a)), false)
	if len(e.entry(k).Dests) != 1 || res.Draining != 0 {
		t.Fatalf("UDP real server drained instead of removed: %+v", e.entry(k).Dests)
	}
	if len(res.RemovedUDP) != 1 || res.RemovedUDP[0] != (RemovedDest{VS: k, Dest: b.DestKey}) {
		t.Fatalf("removed UDP %+v", res.RemovedUDP)
	}
}

func TestServiceGoneTakesItsRouteAfterIt(t *testing.T) {
	e := newEnv(t)
	http := vs(key("198.19.0.10", 80, model.TCP), model.ClusterIP, dest("198.18.128.5", 80))
	https := vs(key("198.19.0.10", 443, model.TCP), model.ClusterIP, dest("198.18.128.5", 443))
	other := vs(key("198.19.0.11", 80, model.TCP), model.ClusterIP)
	e.sync(state(http, https, other), true)

	// One port of a VIP goes: the route stays.
	e.resetCounts()
	e.sync(state(http, other), false)
	if e.ipvs.Count(ipvs.OpDeleteService) != 1 || e.routes.RouteWrites() != 0 {
		t.Fatalf("ops %v / %v", e.ipvs.Counts(), e.routes.Counts())
	}
	// The whole VIP goes: service, then route.
	e.resetCounts()
	e.sync(state(other), false)
	if e.ipvs.Count(ipvs.OpDeleteService) != 1 || e.routes.Count(vip.OpDeleteAll) != 1 || e.routes.RouteWrites() != 1 {
		t.Fatalf("ops %v / %v", e.ipvs.Counts(), e.routes.Counts())
	}
	left, _ := e.routes.List()
	if len(left) != 1 || left[0] != other.Addr {
		t.Fatalf("routes left %v", left)
	}
}

func TestOnlyOwnedServicesAreTouched(t *testing.T) {
	e := newEnv(t)
	foreign := ipvs.Entry{Service: ipvs.Service{VSKey: key("198.18.250.1", 80, model.TCP), Scheduler: "wlc"},
		Dests: []ipvs.Dest{{DestKey: model.DestKey{Addr: netip.MustParseAddr("198.18.250.2"), Port: 80}, Weight: 3}}}
	nodeNotNodePort := ipvs.Entry{Service: ipvs.Service{VSKey: key("198.18.0.10", 8443, model.TCP), Scheduler: "rr"}}
	staleNodePort := ipvs.Entry{Service: ipvs.Service{VSKey: key("198.18.0.10", 30999, model.TCP), Scheduler: "rr"}}
	staleClusterIP := ipvs.Entry{Service: ipvs.Service{VSKey: key("198.19.0.99", 80, model.TCP), Scheduler: "rr"}}
	if err := e.ipvs.Seed(foreign, nodeNotNodePort, staleNodePort, staleClusterIP); err != nil {
		t.Fatal(err)
	}
	if err := e.routes.Seed(staleClusterIP.Addr); err != nil {
		t.Fatal(err)
	}
	e.resetCounts()
	e.sync(state(vs(key("198.19.0.10", 80, model.TCP), model.ClusterIP)), true)

	for _, k := range []model.VSKey{foreign.VSKey, nodeNotNodePort.VSKey} {
		if e.entry(k) == nil {
			t.Errorf("%s is not proxyd's and was deleted", k)
		}
	}
	for _, k := range []model.VSKey{staleNodePort.VSKey, staleClusterIP.VSKey} {
		if e.entry(k) != nil {
			t.Errorf("%s is proxyd's, unwanted, and was kept", k)
		}
	}
	if got := e.entry(foreign.VSKey); got.Scheduler != "wlc" || got.Dests[0].Weight != 3 {
		t.Errorf("foreign service changed: %+v", got)
	}
	routes, _ := e.routes.List()
	if !slices.Equal(routes, []netip.Addr{netip.MustParseAddr("198.19.0.10")}) {
		t.Errorf("routes %v", routes)
	}
}

func TestFullSyncRepairsDrift(t *testing.T) {
	e := newEnv(t)
	k := key("198.19.0.10", 80, model.TCP)
	want := vs(k, model.ClusterIP, dest("198.18.128.5", 80), dest("198.18.129.5", 80))
	e.sync(state(want), true)
	// Someone else deletes a real server and the VIP route.
	if err := e.ipvs.DeleteDest(k, want.Dests[0].DestKey); err != nil {
		t.Fatal(err)
	}
	if err := e.routes.Delete(k.Addr); err != nil {
		t.Fatal(err)
	}
	e.resetCounts()
	if res := e.sync(state(want), false); res.Writes != 0 {
		t.Fatalf("a partial sync trusts its view, yet wrote %d", res.Writes)
	}
	res := e.sync(state(want), true)
	if res.Writes != 2 || len(e.entry(k).Dests) != 2 {
		t.Fatalf("full sync repaired with %d writes: %+v", res.Writes, e.entry(k))
	}
}

func TestFailureKeepsGoingAndForcesARead(t *testing.T) {
	e := newEnv(t)
	a := vs(key("198.19.0.10", 80, model.TCP), model.ClusterIP, dest("198.18.128.5", 80))
	b := vs(key("198.19.0.11", 80, model.TCP), model.ClusterIP, dest("198.18.128.6", 80))
	e.ipvs.FailNext(ipvs.OpCreateService, errors.New("ENOMEM"))
	_, err := e.r.Sync(state(a, b), nodeIPs, true)
	if err == nil {
		t.Fatal("failure not reported")
	}
	if p := e.r.Programmed(); len(p) != 1 || p[0] != b || e.entry(b.VSKey) == nil {
		t.Fatalf("the other service was not applied: %+v", p)
	}
	e.resetCounts()
	// The next sync re-reads the kernel even though it is partial.
	res := e.sync(state(a, b), false)
	if e.ipvs.Count(ipvs.OpList) != 1 || len(e.r.Programmed()) != 2 || e.entry(a.VSKey) == nil {
		t.Fatalf("retry: %v, %+v", e.ipvs.Counts(), res)
	}
}

func TestRouteFailureHoldsBackItsServices(t *testing.T) {
	e := newEnv(t)
	a := vs(key("198.19.0.10", 80, model.TCP), model.ClusterIP)
	e.routes.FailNext(vip.OpAddAll, &vip.VIPError{Op: "add", VIP: a.Addr, Err: vip.ErrExists})
	res, err := e.r.Sync(state(a), nodeIPs, true)
	if err == nil || len(e.r.Programmed()) != 0 || e.entry(a.VSKey) != nil {
		t.Fatalf("a VIP without its route was programmed: %v %+v", err, res)
	}
}

func TestUpdateTouchesOnlyTheChanges(t *testing.T) {
	e := newEnv(t)
	web := vs(key("198.19.0.10", 80, model.TCP), model.ClusterIP, dest("198.18.128.5", 80))
	api := vs(key("198.19.0.11", 443, model.TCP), model.ClusterIP, dest("198.18.128.6", 443))
	if _, err := e.r.Update(nil); !errors.Is(err, ErrNeedSync) {
		t.Fatalf("Update before any sync: %v", err)
	}
	e.sync(state(web, api), true)
	e.resetCounts()

	// A new endpoint for web: one write, no reads.
	web2 := vs(web.VSKey, model.ClusterIP, dest("198.18.128.5", 80), dest("198.18.129.5", 80))
	res, err := e.r.Update(map[model.VSKey]*model.VirtualService{web.VSKey: web2})
	if err != nil || res.Writes != 1 || e.ipvs.Count(ipvs.OpList) != 0 || e.ipvs.Count(ipvs.OpCreateDest) != 1 {
		t.Fatalf("update: %v %+v %v", err, res, e.ipvs.Counts())
	}
	// A new Service on a new VIP: route, service, real server.
	dns := vs(key("198.19.0.53", 53, model.UDP), model.ClusterIP, dest("198.18.128.7", 53))
	if res, err := e.r.Update(map[model.VSKey]*model.VirtualService{dns.VSKey: dns}); err != nil || res.Writes != 3 || !e.r.IsProgrammed(dns.VSKey) {
		t.Fatalf("new service: %v %+v", err, res)
	}
	// api goes: its service and its route.
	e.resetCounts()
	if res, err := e.r.Update(map[model.VSKey]*model.VirtualService{api.VSKey: nil}); err != nil || res.Writes != 2 || e.r.IsProgrammed(api.VSKey) {
		t.Fatalf("removal: %v %+v", err, res)
	}
	if e.entry(api.VSKey) != nil {
		t.Fatal("api still in the kernel")
	}
	routes, _ := e.routes.List()
	if len(routes) != 2 {
		t.Fatalf("routes %v", routes)
	}
	// A full sync of the same state agrees: nothing to write.
	e.resetCounts()
	if res := e.sync(state(web2, dns), true); res.Writes != 0 {
		t.Fatalf("full sync after updates wrote %d", res.Writes)
	}
}

func TestForeignForwardMethodIsRepaired(t *testing.T) {
	e := newEnv(t)
	k := key("198.19.0.10", 80, model.TCP)
	d := dest("198.18.128.5", 80)
	if err := e.routes.Seed(k.Addr); err != nil {
		t.Fatal(err)
	}
	// Adopted from the kernel with a direct-routing real server.
	if err := e.ipvs.Seed(ipvs.Entry{Service: ipvs.Service{VSKey: k, Scheduler: "rr"},
		Dests: []ipvs.Dest{{DestKey: d.DestKey, Weight: 1, NotMasquerade: true}}}); err != nil {
		t.Fatal(err)
	}
	e.resetCounts()
	e.sync(state(vs(k, model.ClusterIP, d)), true)
	if e.ipvs.Count(ipvs.OpUpdateDest) != 1 || e.entry(k).Dests[0].NotMasquerade {
		t.Fatalf("real server not reset to masquerade: %v %+v", e.ipvs.Counts(), e.entry(k).Dests)
	}
}
