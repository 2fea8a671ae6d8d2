//go:build vm

package ipvstest

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Addresses of the topology, all in 198.18.0.0/15.
const (
	vip      = "198.18.255.1"
	vipPort  = 80
	s1Addr   = "198.18.200.2"
	s2Addr   = "198.18.201.2"
	s1Router = "198.18.200.1"
	s2Router = "198.18.201.1"
)

// Under TCG the guest runs Go ~13x slower than the host: generous bounds,
// which a passing run never waits for.
const (
	dialTimeout  = 20 * time.Second
	statsTimeout = 30 * time.Second // IPVS refreshes its statistics every 2 s
)

// director is a namespace holding an IPVS virtual service whose two real
// servers live in namespaces of their own, behind veth pairs:
//
//	lb: vip0 (dummy) 198.18.255.1/32, IPVS 198.18.255.1:80 (NAT)
//	    lb-s1 198.18.200.1/24 ── s1: eth0 198.18.200.2/24, serves "s1" on :80
//	    lb-s2 198.18.201.1/24 ── s2: eth0 198.18.201.2/24, serves "s2" on :80
//
// The client is a socket of the test in lb: locally originated traffic to
// the VIP, which IPVS schedules at LOCAL_OUT, as on a Kubernetes node.
type director struct {
	lb     netns.NsHandle
	client ipvs.Client
	svc    ipvs.Service
}

func newDirector(t *testing.T, scheduler string) *director {
	t.Helper()
	lb, s1, s2 := netnstest.New(t), netnstest.New(t), netnstest.New(t)
	netnstest.Veth(t, netnstest.End{NS: lb, Name: "lb-s1", Addrs: []string{s1Router + "/24"}}, netnstest.End{NS: s1, Name: "eth0", Addrs: []string{s1Addr + "/24"}})
	netnstest.Veth(t, netnstest.End{NS: lb, Name: "lb-s2", Addrs: []string{s2Router + "/24"}}, netnstest.End{NS: s2, Name: "eth0", Addrs: []string{s2Addr + "/24"}})
	defaultRoute(t, s1, s1Router)
	defaultRoute(t, s2, s2Router)
	serveName(t, s1, fmt.Sprintf("%s:%d", s1Addr, vipPort), "s1")
	serveName(t, s2, fmt.Sprintf("%s:%d", s2Addr, vipPort), "s2")

	// The VIP is local to lb, as on a node (kube-proxy's kube-ipvs0).
	h := netnstest.Handle(t, lb)
	if err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "vip0"}}); err != nil {
		t.Fatalf("dummy vip0: %v", err)
	}
	netnstest.LinkUp(t, h, "vip0", vip+"/32")

	d := &director{lb: lb}
	err := netnstest.InNetns(lb, func() (err error) {
		d.client, err = ipvs.New() // the netlink socket stays in lb
		return err
	})
	if err != nil {
		t.Fatalf("ipvs client: %v", err)
	}
	t.Cleanup(func() { closeClient(d.client) })

	d.svc = ipvs.Service{
		Address:   netip.MustParseAddr(vip),
		Port:      vipPort,
		Protocol:  ipvs.TCP,
		Family:    ipvs.INET,
		Scheduler: scheduler,
		Netmask:   netmask.MaskFrom(32, 32),
	}
	if err := d.client.CreateService(d.svc); err != nil {
		t.Fatalf("create service %s:%d (%s): %v", vip, vipPort, scheduler, err)
	}
	for _, rs := range []string{s1Addr, s2Addr} {
		if err := d.client.CreateDestination(d.svc, d.dest(rs)); err != nil {
			t.Fatalf("add real server %s: %v", rs, err)
		}
	}
	return d
}

func (d *director) dest(addr string) ipvs.Destination {
	return ipvs.Destination{
		Address:   netip.MustParseAddr(addr),
		Port:      vipPort,
		Family:    ipvs.INET,
		FwdMethod: ipvs.Masquerade,
		Weight:    1,
	}
}

// ask makes n connections to the VIP, one after the other, and returns
// which server answered each.
func (d *director) ask(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	for i := range n {
		ctx, cancel := context.WithTimeout(t.Context(), dialTimeout)
		name, err := askName(ctx, d.lb, fmt.Sprintf("%s:%d", vip, vipPort))
		cancel()
		if err != nil {
			t.Fatalf("connection %d to the VIP: %v (answers so far: %v)", i+1, err, got)
		}
		got = append(got, name)
	}
	return got
}

func TestRoundRobinOverRealTCP(t *testing.T) {
	requireIPVS(t)
	d := newDirector(t, "rr")

	svcs, err := d.client.Services()
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 || svcs[0].Address.String() != vip || svcs[0].Port != vipPort || svcs[0].Scheduler != "rr" {
		t.Fatalf("services in lb = %+v, want only %s:%d rr", svcs, vip, vipPort)
	}

	const n = 6
	got := d.ask(t, n)
	t.Logf("answers: %v", got)
	for i := 1; i < n; i++ {
		if got[i] == got[i-1] {
			t.Fatalf("answers %v: connections %d and %d went to the same server; round robin alternates", got, i, i+1)
		}
	}
	if got[0] != "s1" && got[0] != "s2" {
		t.Fatalf("answers %v: want s1 and s2 only", got)
	}

	// The kernel sums its per-CPU counters every 2 s: poll until the
	// statistics show every connection, evenly spread.
	netnstest.WaitFor(t, statsTimeout, pollInterval, "IPVS statistics", func() (bool, string) {
		svc, err := d.client.Service(d.svc)
		if err != nil {
			return false, err.Error()
		}
		dests, err := d.client.Destinations(d.svc)
		if err != nil {
			return false, err.Error()
		}
		state := fmt.Sprintf("service conns %d", svc.Stats.Connections)
		done := svc.Stats.Connections == n && len(dests) == 2
		for _, de := range dests {
			state += fmt.Sprintf(", %s conns %d", de.Address, de.Stats.Connections)
			done = done && de.Stats.Connections == n/2
		}
		return done, state
	})

	// Without s1, every connection goes to s2.
	if err := d.client.RemoveDestination(d.svc, d.dest(s1Addr)); err != nil {
		t.Fatalf("remove real server %s: %v", s1Addr, err)
	}
	if got := d.ask(t, 2); got[0] != "s2" || got[1] != "s2" {
		t.Fatalf("after removing s1, answers %v; want [s2 s2]", got)
	}
}

// TestSchedulerLoadsOnDemand uses a scheduler the VM does not preload
// (weighted failover): the kernel loads ip_vs_fo itself, through the
// modprobe the VM's init provides.
func TestSchedulerLoadsOnDemand(t *testing.T) {
	requireIPVS(t)
	d := newDirector(t, "fo")
	// fo sends everything to the highest-weight server.
	dest := d.dest(s2Addr)
	dest.Weight = 2
	if err := d.client.UpdateDestination(d.svc, dest); err != nil {
		t.Fatalf("weight of %s: %v", s2Addr, err)
	}
	if got := d.ask(t, 3); got[0] != "s2" || got[1] != "s2" || got[2] != "s2" {
		t.Fatalf("answers %v; weighted failover wants [s2 s2 s2]", got)
	}
}
