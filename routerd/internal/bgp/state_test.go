package bgp

import (
	"reflect"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

func TestRemoteCapabilities(t *testing.T) {
	mp := func(f *api.Family) *anypb.Any { a, _ := anypb.New(&api.MultiProtocolCapability{Family: f}); return a }
	gr, _ := anypb.New(&api.GracefulRestartCapability{Time: 120})
	rr, _ := anypb.New(&api.RouteRefreshCapability{})
	vpn := mp(&api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_MPLS_VPN})

	for name, tc := range map[string]struct {
		caps     []*anypb.Any
		gr       bool
		families map[api.Family_Afi]bool
	}{
		"none: IPv4 only":     {families: map[api.Family_Afi]bool{api.Family_AFI_IP: true}},
		"both and GR":         {caps: []*anypb.Any{rr, mp(familyIPv4), gr, mp(familyIPv6)}, gr: true, families: map[api.Family_Afi]bool{api.Family_AFI_IP: true, api.Family_AFI_IP6: true}},
		"IPv6 only":           {caps: []*anypb.Any{mp(familyIPv6)}, families: map[api.Family_Afi]bool{api.Family_AFI_IP6: true}},
		"VPN only: no family": {caps: []*anypb.Any{vpn}, families: map[api.Family_Afi]bool{}},
	} {
		gotGR, got := remoteCapabilities(tc.caps)
		if gotGR != tc.gr || !reflect.DeepEqual(got, tc.families) {
			t.Errorf("%s: %v %v, want %v %v", name, gotGR, got, tc.gr, tc.families)
		}
	}
}

func TestPeerState(t *testing.T) {
	p := node(2)
	up := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mp4, _ := anypb.New(&api.MultiProtocolCapability{Family: familyIPv4})
	mp6, _ := anypb.New(&api.MultiProtocolCapability{Family: familyIPv6})
	gr, _ := anypb.New(&api.GracefulRestartCapability{Time: 120})
	established := func(caps ...*anypb.Any) *api.Peer {
		return &api.Peer{
			State:  &api.PeerState{SessionState: api.PeerState_ESTABLISHED, RemoteCap: caps},
			Timers: &api.Timers{State: &api.TimersState{Uptime: timestamppb.New(up), Downtime: timestamppb.New(up.Add(-time.Hour))}},
			AfiSafis: []*api.AfiSafi{
				{State: &api.AfiSafiState{Family: familyIPv4, Received: 3, Accepted: 2, Advertised: 5}},
				{State: &api.AfiSafiState{Family: familyIPv6, Received: 1, Accepted: 1, Advertised: 1}},
			},
		}
	}

	t.Run("established with GR, End-of-RIB of both families", func(t *testing.T) {
		since := up.Add(time.Second)
		ev := peerEvents{state: "established", since: since, eor: map[api.Family_Afi]bool{api.Family_AFI_IP: true, api.Family_AFI_IP6: true}}
		got := peerState(p, established(mp4, mp6, gr), ev, true)
		want := model.PeerState{Peer: p, State: "established", Since: since, Received: 4, Accepted: 3,
			Advertised:      4, // 5+1 minus one End-of-RIB per family
			GracefulRestart: true, EndOfRIB: true}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got\n%+v\nwant\n%+v", got, want)
		}
	})
	t.Run("one family without End-of-RIB yet", func(t *testing.T) {
		ev := peerEvents{state: "established", since: up, eor: map[api.Family_Afi]bool{api.Family_AFI_IP: true}}
		if got := peerState(p, established(mp4, mp6, gr), ev, true); got.EndOfRIB {
			t.Fatalf("EndOfRIB without the IPv6 one: %+v", got)
		}
		// A peer offering IPv4 only needs its IPv4 End-of-RIB only.
		if got := peerState(p, established(mp4, gr), ev, true); !got.EndOfRIB {
			t.Fatalf("no EndOfRIB for an IPv4-only peer: %+v", got)
		}
	})
	t.Run("no GR: counts as they are", func(t *testing.T) {
		got := peerState(p, established(mp4), peerEvents{}, false)
		if got.GracefulRestart || got.EndOfRIB || got.Advertised != 6 || !got.Since.Equal(up) {
			t.Fatalf("got %+v", got)
		}
		// GR offered by us but not by the peer: not negotiated.
		if got := peerState(p, established(mp4), peerEvents{}, true); got.GracefulRestart {
			t.Fatalf("GR negotiated without the peer's capability: %+v", got)
		}
	})
	t.Run("down", func(t *testing.T) {
		ap := established(mp4, gr)
		ap.State.SessionState = api.PeerState_ACTIVE
		ev := peerEvents{state: "established", since: up, eor: map[api.Family_Afi]bool{api.Family_AFI_IP: true}}
		got := peerState(p, ap, ev, true)
		want := model.PeerState{Peer: p, State: "active", Since: up.Add(-time.Hour), Received: 4, Accepted: 3}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got\n%+v\nwant\n%+v", got, want)
		}
	})
}
