package bgp

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

func TestFake(t *testing.T) {
	ctx := t.Context()
	f := NewFake()
	n2, n3 := node(2), node(3)
	nh := netip.MustParseAddr("198.18.0.1")

	// Before Start the desired state is only recorded.
	if err := f.SetPeers(ctx, []model.Peer{n2}); err != nil {
		t.Fatal(err)
	}
	if err := f.SetAdvertisements(ctx, []model.Advertisement{adv("198.19.1.0/24")}, nh); err != nil {
		t.Fatal(err)
	}
	if ps, err := f.Peers(ctx); err != nil || ps != nil {
		t.Fatalf("peers before start: %v %v", ps, err)
	}
	if len(f.ConfiguredPeers()) != 0 || len(f.Announced()) != 0 {
		t.Fatal("configured before start")
	}

	if err := f.Start(ctx, testGlobal); err != nil {
		t.Fatal(err)
	}
	if g, running := f.Running(); !running || g.ASN != 64512 || f.Starts() != 1 {
		t.Fatalf("running %v %+v, starts %d", running, g, f.Starts())
	}
	if got := f.ConfiguredPeers(); !reflect.DeepEqual(got, []model.Peer{n2}) {
		t.Fatalf("peers %v", got)
	}
	if got := f.Announced(); !reflect.DeepEqual(got, map[netip.Prefix]netip.Addr{netip.MustParsePrefix("198.19.1.0/24"): nh}) {
		t.Fatalf("announced %v", got)
	}
	// The same Global again is no restart.
	if err := f.Start(ctx, testGlobal); err != nil || f.Starts() != 1 {
		t.Fatalf("restarted with the same Global: %v, starts %d", err, f.Starts())
	}

	// Invalid input fails as the Speaker's does; the rest applies.
	err := f.SetPeers(ctx, []model.Peer{n3, {Name: "broken", ASN: 1}})
	if err == nil || !strings.Contains(err.Error(), "broken: no valid address") {
		t.Fatalf("error %v", err)
	}
	if got := f.ConfiguredPeers(); !reflect.DeepEqual(got, []model.Peer{n3}) {
		t.Fatalf("peers %v", got)
	}

	// Injected state.
	drain(f.changes)
	f.SetPeerState(model.PeerState{Peer: model.Peer{Address: n3.Address}, State: "established", EndOfRIB: true})
	f.SetPeerState(model.PeerState{Peer: model.Peer{Address: n2.Address}, State: "established"}) // not configured: ignored
	f.LearnPath(path("198.19.3.0/24", "198.18.0.3", "198.18.0.3"))
	f.LearnPath(path("198.19.2.0/24", "198.18.0.2", "198.18.0.2"))
	if !drain(f.changes) {
		t.Fatal("no change signalled")
	}
	ps, err := f.Peers(ctx)
	if err != nil || len(ps) != 1 || ps[0].Peer != n3 || !ps[0].Established() || !ps[0].EndOfRIB {
		t.Fatalf("peers %+v %v", ps, err)
	}
	if got := f.Paths(); len(got) != 2 || got[0].Prefix != netip.MustParsePrefix("198.19.2.0/24") {
		t.Fatalf("paths %v", got)
	}
	f.WithdrawPath(netip.MustParsePrefix("198.19.2.0/24"))
	if got := f.Paths(); len(got) != 1 {
		t.Fatalf("paths after withdrawal %v", got)
	}

	// Injected failures change nothing.
	boom := errors.New("boom")
	f.FailNext(OpSetPeers, boom)
	if err := f.SetPeers(ctx, nil); !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if len(f.ConfiguredPeers()) != 1 {
		t.Fatal("failed SetPeers changed the peers")
	}
	if err := f.SetPeers(ctx, nil); err != nil || len(f.ConfiguredPeers()) != 0 {
		t.Fatalf("peers after the failure passed: %v %v", f.ConfiguredPeers(), err)
	}

	// A restart resets the sessions: learned paths go, the desired state
	// is applied again.
	if err := f.SetPeers(ctx, []model.Peer{n2}); err != nil {
		t.Fatal(err)
	}
	g := testGlobal
	g.GracefulRestart = 120e9
	if err := f.Start(ctx, g); err != nil || f.Starts() != 2 {
		t.Fatalf("restart: %v, starts %d", err, f.Starts())
	}
	if len(f.Paths()) != 0 || len(f.ConfiguredPeers()) != 1 || len(f.Announced()) != 1 {
		t.Fatalf("after restart: paths %v peers %v announced %v", f.Paths(), f.ConfiguredPeers(), f.Announced())
	}

	if err := f.Start(ctx, model.Global{ASN: 1}); err == nil {
		t.Fatal("no error for a Global without router ID")
	}
	if err := f.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, running := f.Running(); running {
		t.Fatal("running after Stop")
	}
	if ps, _ := f.Peers(ctx); ps != nil {
		t.Fatalf("peers after Stop: %v", ps)
	}
}
