package bgp

import (
	"net/netip"
	"reflect"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// bestPath is a best-path event as GoBGP's WatchEvent reports it; a local
// path has neighbour "<nil>" (GoBGP prints its missing source address).
func bestPath(t *testing.T, prefix, nextHop, neighbor string, withdraw bool) *api.Path {
	t.Helper()
	p, err := advertPath(ann(prefix, nextHop))
	if err != nil {
		t.Fatal(err)
	}
	p.NeighborIp, p.IsWithdraw = neighbor, withdraw
	return p
}

func eorPath(neighbor string, f *api.Family) *api.Path {
	return &api.Path{Family: f, NeighborIp: neighbor}
}

func tableEvent(paths ...*api.Path) *api.WatchEventResponse {
	return &api.WatchEventResponse{Event: &api.WatchEventResponse_Table{Table: &api.WatchEventResponse_TableEvent{Paths: paths}}}
}

func peerEvent(addr string, s api.PeerState_SessionState) *api.WatchEventResponse {
	return &api.WatchEventResponse{Event: &api.WatchEventResponse_Peer{Peer: &api.WatchEventResponse_PeerEvent{
		Type: api.WatchEventResponse_PeerEvent_STATE,
		Peer: &api.Peer{State: &api.PeerState{NeighborAddress: addr, SessionState: s}},
	}}}
}

func path(prefix, nextHop, peer string) model.Path {
	return model.Path{Prefix: netip.MustParsePrefix(prefix), NextHop: netip.MustParseAddr(nextHop), Peer: netip.MustParseAddr(peer)}
}

func drain(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestTablePaths(t *testing.T) {
	ch := make(chan struct{}, 1)
	tb := newTable(ch)
	gen := tb.reset()
	check := func(want ...model.Path) {
		t.Helper()
		if got := tb.snapshot(); !reflect.DeepEqual(got, append([]model.Path{}, want...)) {
			t.Fatalf("paths\n%v\nwant\n%v", got, want)
		}
	}

	tb.handle(gen, tableEvent(
		bestPath(t, "198.19.3.0/24", "198.18.0.3", "198.18.0.3", false),
		bestPath(t, "2001:db8:2::/64", "2001:db8::2", "198.18.0.2", false),
		bestPath(t, "198.19.2.0/24", "198.18.0.2", "198.18.0.2", false),
	))
	if !drain(ch) {
		t.Fatal("no change signalled")
	}
	check(path("198.19.2.0/24", "198.18.0.2", "198.18.0.2"), path("198.19.3.0/24", "198.18.0.3", "198.18.0.3"),
		path("2001:db8:2::/64", "2001:db8::2", "198.18.0.2"))

	// The same best path again is no change.
	tb.handle(gen, tableEvent(bestPath(t, "198.19.2.0/24", "198.18.0.2", "198.18.0.2", false)))
	if drain(ch) {
		t.Error("change signalled for the same path")
	}

	// A new best path replaces the old; a withdrawal removes; a local
	// best path removes the learned one.
	tb.handle(gen, tableEvent(
		bestPath(t, "198.19.2.0/24", "198.18.0.9", "198.18.0.9", false),
		bestPath(t, "198.19.3.0/24", "198.18.0.3", "198.18.0.3", true),
		bestPath(t, "2001:db8:2::/64", "::", "<nil>", false),
	))
	if !drain(ch) {
		t.Fatal("no change signalled")
	}
	check(path("198.19.2.0/24", "198.18.0.9", "198.18.0.9"))

	// A local path or withdrawal of an unknown prefix changes nothing.
	tb.handle(gen, tableEvent(bestPath(t, "198.19.7.0/24", "198.18.0.1", "<nil>", false), bestPath(t, "198.19.8.0/24", "198.18.0.1", "198.18.0.3", true)))
	if drain(ch) {
		t.Error("change signalled for nothing")
	}

	// The caller owns what Paths returns.
	got := tb.snapshot()
	got[0].NextHop = netip.MustParseAddr("198.18.0.99")
	check(path("198.19.2.0/24", "198.18.0.9", "198.18.0.9"))

	// Events of an older stream are dropped; reset empties the table.
	gen2 := tb.reset()
	if !drain(ch) {
		t.Error("reset of a non-empty table not signalled")
	}
	tb.handle(gen, tableEvent(bestPath(t, "198.19.5.0/24", "198.18.0.5", "198.18.0.5", false)))
	check()
	tb.handle(gen2, tableEvent(bestPath(t, "198.19.5.0/24", "198.18.0.5", "198.18.0.5", false)))
	check(path("198.19.5.0/24", "198.18.0.5", "198.18.0.5"))
}

func TestTablePeerEvents(t *testing.T) {
	ch := make(chan struct{}, 1)
	tb := newTable(ch)
	gen := tb.reset()
	a := netip.MustParseAddr("198.18.0.2")

	tb.handle(gen, peerEvent("198.18.0.2", api.PeerState_ACTIVE))
	e, ok := tb.peer(a)
	if !ok || e.state != "active" || e.since.IsZero() || len(e.eor) > 0 {
		t.Fatalf("after active: %+v %v", e, ok)
	}
	// An End-of-RIB outside an established session counts for nothing.
	tb.handle(gen, tableEvent(eorPath("198.18.0.2", familyIPv4)))
	if e, _ := tb.peer(a); len(e.eor) != 0 {
		t.Fatalf("End-of-RIB counted before the session: %+v", e)
	}
	drain(ch)
	tb.handle(gen, peerEvent("198.18.0.2", api.PeerState_ESTABLISHED))
	tb.handle(gen, tableEvent(eorPath("198.18.0.2", familyIPv4)))
	if !drain(ch) {
		t.Fatal("no change signalled")
	}
	e, _ = tb.peer(a)
	if e.state != "established" || !e.eor[api.Family_AFI_IP] || e.eor[api.Family_AFI_IP6] {
		t.Fatalf("after established and End-of-RIB: %+v", e)
	}
	// A session that goes down forgets its End-of-RIB.
	tb.handle(gen, peerEvent("198.18.0.2", api.PeerState_IDLE))
	tb.handle(gen, peerEvent("198.18.0.2", api.PeerState_ESTABLISHED))
	if e, _ := tb.peer(a); len(e.eor) != 0 {
		t.Fatalf("End-of-RIB kept across sessions: %+v", e)
	}
	tb.forgetPeer(a)
	if _, ok := tb.peer(a); ok {
		t.Fatal("forgotten peer still known")
	}
}

func TestLearnedPathErrors(t *testing.T) {
	other, _ := anypb.New(&api.LabeledVPNIPAddressPrefix{})
	if _, _, _, err := learnedPath(&api.Path{Nlri: other, NeighborIp: "198.18.0.2"}); err == nil {
		t.Error("no error for a VPN NLRI")
	}
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: "198.19.1.0", PrefixLen: 24})
	if _, _, _, err := learnedPath(&api.Path{Nlri: nlri, NeighborIp: "198.18.0.2"}); err == nil {
		t.Error("no error for a path without next hop")
	}
	bad, _ := anypb.New(&api.IPAddressPrefix{Prefix: "198.19.1.0", PrefixLen: 40})
	if _, _, _, err := learnedPath(&api.Path{Nlri: bad, NeighborIp: "198.18.0.2"}); err == nil {
		t.Error("no error for a /40 IPv4 prefix")
	}
}
