package app

import (
	"net/netip"
	"testing"

	"github.com/nodenet/nodenet/proxyd/internal/conntrack"
	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/reconcile"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func writesOf(t *testing.T, w *kernelWrites, target string) int {
	t.Helper()
	return int(testutil.ToFloat64(w.vec.WithLabelValues(target)))
}

// The counter sees exactly the writes the kernel ports get: a cold sync's,
// then none from a restarted reconciler over the same kernel and state.
func TestKernelWritesCountsThePorts(t *testing.T) {
	reg := prometheus.NewRegistry()
	w := newKernelWrites(reg)
	if n := testutil.CollectAndCount(w.vec); n != 5 {
		t.Fatalf("%d series before any write, want every target at 0", n)
	}
	fakeIPVS, fakeRoutes := ipvs.NewFake(), vip.NewFake()
	newReconciler := func() *reconcile.Reconciler {
		return reconcile.New(reconcile.Config{}, countingIPVS{fakeIPVS, w}, countingRoutes{fakeRoutes, w})
	}
	web := &model.VirtualService{
		VSKey:     model.VSKey{Addr: netip.MustParseAddr("198.19.0.10"), Port: 80, Proto: model.TCP},
		Scheduler: "rr", Kind: model.ClusterIP,
		Dests: []model.Dest{
			{DestKey: model.DestKey{Addr: netip.MustParseAddr("198.18.129.2"), Port: 8080}, Weight: 1},
			{DestKey: model.DestKey{Addr: netip.MustParseAddr("198.18.129.3"), Port: 8080}, Weight: 1},
		},
	}
	state := model.State{Services: []*model.VirtualService{web}}
	nodeIPs := []netip.Addr{netip.MustParseAddr("198.18.0.10")}

	if _, err := newReconciler().Sync(state, nodeIPs, true); err != nil {
		t.Fatal(err)
	}
	if got, want := writesOf(t, w, writesIPVS), fakeIPVS.WriteCount(); got != want || got != 3 {
		t.Errorf("ipvs writes counted %d, the fake saw %d, want 3 (a service, two real servers)", got, want)
	}
	if got := writesOf(t, w, writesRoutes); got != 1 {
		t.Errorf("route writes counted %d, want 1", got)
	}

	// A restarted proxyd over the same kernel and state writes nothing.
	if _, err := newReconciler().Sync(state, nodeIPs, true); err != nil {
		t.Fatal(err)
	}
	if got := writesOf(t, w, writesIPVS) + writesOf(t, w, writesRoutes); got != 4 {
		t.Errorf("after a restart with nothing changed: %d writes in all, want still 4", got)
	}

	// Deleting everything: the service (its real servers go with it) and
	// the route.
	if _, err := newReconciler().Sync(model.State{}, nodeIPs, true); err != nil {
		t.Fatal(err)
	}
	if got := writesOf(t, w, writesIPVS); got != 4 {
		t.Errorf("ipvs writes %d after the delete, want 4", got)
	}
	if got := writesOf(t, w, writesRoutes); got != 2 {
		t.Errorf("route writes %d after the delete, want 2", got)
	}

	c := countingConntrack{fixedConntrack(3), w}
	if _, err := c.DeleteUDP(nil); err != nil {
		t.Fatal(err)
	}
	w.add(writesSysctl, 2)
	w.add(writesNFTables, 0)
	if got := writesOf(t, w, writesConntrack); got != 3 {
		t.Errorf("conntrack writes %d, want 3", got)
	}
	if writesOf(t, w, writesSysctl) != 2 || writesOf(t, w, writesNFTables) != 0 {
		t.Errorf("sysctl %d, nftables %d: want 2, 0", writesOf(t, w, writesSysctl), writesOf(t, w, writesNFTables))
	}
	var none *kernelWrites
	none.add(writesIPVS, 1) // cleanup counts nothing, and must not crash
}

type fixedConntrack uint

func (f fixedConntrack) DeleteUDP([]conntrack.Flow) (uint, error) { return uint(f), nil }
