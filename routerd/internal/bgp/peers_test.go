package bgp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/proto"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Address plan of the unit tests: the node is 198.18.0.1 in AS 64512,
// other nodes are 198.18.0.2-9, external routers 198.18.1.x in AS 65001.
// Nothing here opens a socket.

var testGlobal = model.Global{
	RouterID:   netip.MustParseAddr("198.18.0.1"),
	ASN:        64512,
	ListenPort: 179,
}

func node(last byte) model.Peer {
	return model.Peer{Address: netip.AddrFrom4([4]byte{198, 18, 0, last}), ASN: 64512, Kind: model.NodePeer,
		Name: "node-" + string('0'+rune(last))}
}

func TestPlanPeers(t *testing.T) {
	n2, n3, n4 := node(2), node(3), node(4)
	n3pw := n3
	n3pw.Password = "secret"
	n4renamed := n4
	n4renamed.Name = "renamed"
	have := map[netip.Addr]model.Peer{n2.Address: n2, n3.Address: n3, n4.Address: n4}

	t.Run("no change", func(t *testing.T) {
		plan, err := planPeers(testGlobal, have, []model.Peer{n4, n3, n2})
		if err != nil || !reflect.DeepEqual(plan, peerPlan{}) {
			t.Fatalf("plan %+v, err %v; want nothing to do", plan, err)
		}
	})
	t.Run("add delete replace rename", func(t *testing.T) {
		n5 := node(5)
		plan, err := planPeers(testGlobal, have, []model.Peer{n5, n3pw, n4renamed})
		if err != nil {
			t.Fatal(err)
		}
		want := peerPlan{
			Add:     []model.Peer{n5},
			Delete:  []model.Peer{n2},
			Replace: []peerChange{{Old: n3, New: n3pw}},
			Rename:  []model.Peer{n4renamed},
		}
		if !reflect.DeepEqual(plan, want) {
			t.Fatalf("plan\n%+v\nwant\n%+v", plan, want)
		}
		got := plan.apply(have)
		wantMap := map[netip.Addr]model.Peer{n5.Address: n5, n3.Address: n3pw, n4.Address: n4renamed}
		if !reflect.DeepEqual(got, wantMap) {
			t.Fatalf("applied %v, want %v", got, wantMap)
		}
	})
	t.Run("every session setting is a change", func(t *testing.T) {
		for name, mod := range map[string]func(*model.Peer){
			"password":  func(p *model.Peer) { p.Password = "x" },
			"hold time": func(p *model.Peer) { p.HoldTime = 9 * time.Second },
			"multihop":  func(p *model.Peer) { p.Multihop = 2 },
			"port":      func(p *model.Peer) { p.Port = 1179 },
			"rr client": func(p *model.Peer) { p.RRClient = true },
			"asn":       func(p *model.Peer) { p.ASN = 65001 },
			"kind":      func(p *model.Peer) { p.Kind = model.ExternalPeer },
		} {
			p := n2
			mod(&p)
			plan, err := planPeers(testGlobal, map[netip.Addr]model.Peer{n2.Address: n2}, []model.Peer{p})
			if err != nil || len(plan.Replace) != 1 || len(plan.Add)+len(plan.Delete)+len(plan.Rename) != 0 {
				t.Errorf("%s: plan %+v, err %v; want one replacement", name, plan, err)
			}
		}
	})
	t.Run("invalid peers are reported, the rest applied", func(t *testing.T) {
		badHold := n3
		badHold.HoldTime = time.Second
		dup := node(5)
		dup.Name = "dup"
		plan, err := planPeers(testGlobal, have, []model.Peer{
			{Name: "no address", ASN: 64512},
			badHold,      // configured: left as it was
			node(5), dup, // same address twice: the first wins
		})
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"no address: no valid address", "198.18.0.3 (node-3): hold time 1s", "198.18.0.5 (dup): address listed twice"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
		want := peerPlan{Add: []model.Peer{node(5)}, Delete: []model.Peer{n2, n4}}
		if !reflect.DeepEqual(plan, want) {
			t.Fatalf("plan\n%+v\nwant\n%+v", plan, want)
		}
	})
}

func TestValidatePeer(t *testing.T) {
	ext := model.Peer{Address: netip.MustParseAddr("198.18.1.1"), ASN: 65001}
	for name, tc := range map[string]struct {
		p   model.Peer
		err string
	}{
		"node":            {p: node(2)},
		"external":        {p: ext},
		"ipv6":            {p: model.Peer{Address: netip.MustParseAddr("2001:db8::2"), ASN: 64512}},
		"zero":            {p: model.Peer{ASN: 64512}, err: "no valid address"},
		"unspecified":     {p: model.Peer{Address: netip.IPv4Unspecified(), ASN: 64512}, err: "not a unicast"},
		"multicast":       {p: model.Peer{Address: netip.MustParseAddr("224.0.0.5"), ASN: 64512}, err: "not a unicast"},
		"mapped":          {p: model.Peer{Address: netip.MustParseAddr("::ffff:198.18.0.2"), ASN: 64512}, err: "not a unicast"},
		"asn 0":           {p: model.Peer{Address: netip.MustParseAddr("198.18.0.2")}, err: "AS number 0"},
		"hold 2s":         {p: model.Peer{Address: netip.MustParseAddr("198.18.0.2"), ASN: 1, HoldTime: 2 * time.Second}, err: "hold time"},
		"hold too long":   {p: model.Peer{Address: netip.MustParseAddr("198.18.0.2"), ASN: 1, HoldTime: 70000 * time.Second}, err: "hold time"},
		"long password":   {p: model.Peer{Address: netip.MustParseAddr("198.18.0.2"), ASN: 1, Password: strings.Repeat("x", 81)}, err: "longer than 80"},
		"ebgp rr client":  {p: model.Peer{Address: netip.MustParseAddr("198.18.1.1"), ASN: 65001, RRClient: true}, err: "route-reflector client in AS 65001"},
		"hold 3s is fine": {p: model.Peer{Address: netip.MustParseAddr("198.18.0.2"), ASN: 1, HoldTime: 3 * time.Second}},
	} {
		err := validatePeer(testGlobal, tc.p)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", name, err, tc.err)
		}
	}
}

func TestPeerToAPI(t *testing.T) {
	afiSafis := func(gr bool, families ...*api.Family) []*api.AfiSafi {
		if len(families) == 0 {
			families = []*api.Family{familyIPv4}
		}
		var out []*api.AfiSafi
		for _, f := range families {
			out = append(out, &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true},
				MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: gr}}})
		}
		return out
	}
	timers := &api.Timers{Config: &api.TimersConfig{ConnectRetry: 5}}

	t.Run("plain node", func(t *testing.T) {
		got, err := peerToAPI(testGlobal, node(2), false)
		if err != nil {
			t.Fatal(err)
		}
		want := &api.Peer{
			Conf:   &api.PeerConf{NeighborAddress: "198.18.0.2", PeerAsn: 64512},
			Timers: timers,
			// 198.18.0.1 < 198.18.0.2: the other node dials.
			Transport: &api.Transport{PassiveMode: true},
			AfiSafis:  afiSafis(false),
		}
		assertProto(t, got, want)
	})
	t.Run("families", func(t *testing.T) {
		// IPv4 unicast only, unless the cluster is dual stack or the
		// peer is reached over IPv6: GoBGP sends an End-of-RIB for every
		// configured family, negotiated or not.
		dual := testGlobal
		dual.IPv6 = true
		got, err := peerToAPI(dual, node(2), false)
		if err != nil {
			t.Fatal(err)
		}
		assertProto(t, &api.Peer{AfiSafis: got.AfiSafis}, &api.Peer{AfiSafis: afiSafis(false, familyIPv4, familyIPv6)})
		v6 := model.Peer{Address: netip.MustParseAddr("2001:db8::1"), ASN: 65001, Kind: model.ExternalPeer}
		got, err = peerToAPI(testGlobal, v6, false)
		if err != nil {
			t.Fatal(err)
		}
		assertProto(t, &api.Peer{AfiSafis: got.AfiSafis}, &api.Peer{AfiSafis: afiSafis(false, familyIPv4, familyIPv6)})
	})
	t.Run("who dials", func(t *testing.T) {
		listen6 := testGlobal
		listen6.ListenAddresses = []netip.Addr{netip.MustParseAddr("2001:db8::5")}
		notListening := testGlobal
		notListening.ListenPort = -1
		ext := model.Peer{Address: netip.MustParseAddr("198.18.1.1"), ASN: 65001, Kind: model.ExternalPeer}
		v6 := func(a string) model.Peer {
			return model.Peer{Address: netip.MustParseAddr(a), ASN: 64512, Kind: model.NodePeer}
		}
		for name, tc := range map[string]struct {
			g    model.Global
			p    model.Peer
			wait bool
		}{
			"higher node":                   {testGlobal, node(2), true},
			"lower node":                    {model.Global{RouterID: netip.MustParseAddr("198.18.0.3"), ASN: 64512}, node(2), false},
			"external":                      {testGlobal, ext, false},
			"not listening":                 {notListening, node(2), false},
			"IPv6 by listen address":        {listen6, v6("2001:db8::9"), true},
			"IPv6 lower by listen address":  {listen6, v6("2001:db8::1"), false},
			"IPv6 without an IPv6 identity": {testGlobal, v6("2001:db8::9"), false},
		} {
			got, err := peerToAPI(tc.g, tc.p, false)
			if err != nil {
				t.Fatal(err)
			}
			if got.Transport.PassiveMode != tc.wait {
				t.Errorf("%s: waits %v, want %v", name, got.Transport.PassiveMode, tc.wait)
			}
		}
	})
	t.Run("external with everything", func(t *testing.T) {
		g := testGlobal
		g.GracefulRestart = 2 * time.Minute
		g.ListenAddresses = []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("198.18.0.1")}
		p := model.Peer{Address: netip.MustParseAddr("198.18.1.1"), ASN: 65001, Port: 1179, Password: "secret",
			HoldTime: 9 * time.Second, Multihop: 3}
		got, err := peerToAPI(g, p, true)
		if err != nil {
			t.Fatal(err)
		}
		want := &api.Peer{
			Conf:   &api.PeerConf{NeighborAddress: "198.18.1.1", PeerAsn: 65001, AuthPassword: "secret"},
			Timers: &api.Timers{Config: &api.TimersConfig{ConnectRetry: 5, HoldTime: 9, KeepaliveInterval: 3}},
			// Dialled from the listen address of the peer's family.
			Transport:       &api.Transport{RemotePort: 1179, LocalAddress: "198.18.0.1"},
			EbgpMultihop:    &api.EbgpMultihop{Enabled: true, MultihopTtl: 3},
			GracefulRestart: &api.GracefulRestart{Enabled: true, RestartTime: 120, DeferralTime: 30, LocalRestarting: true},
			AfiSafis:        afiSafis(true),
		}
		assertProto(t, got, want)
	})
	t.Run("route reflector client", func(t *testing.T) {
		g := testGlobal
		g.ClusterID = netip.MustParseAddr("198.18.0.254")
		p := node(2)
		p.RRClient = true
		p.Multihop = 4 // iBGP: no TTL setting
		got, err := peerToAPI(g, p, false)
		if err != nil {
			t.Fatal(err)
		}
		want := &api.Peer{
			Conf:           &api.PeerConf{NeighborAddress: "198.18.0.2", PeerAsn: 64512},
			Timers:         timers,
			Transport:      &api.Transport{PassiveMode: true},
			RouteReflector: &api.RouteReflector{RouteReflectorClient: true, RouteReflectorClusterId: "198.18.0.254"},
			AfiSafis:       afiSafis(false),
		}
		assertProto(t, got, want)
		g.ClusterID = netip.Addr{}
		got, _ = peerToAPI(g, p, false)
		if got.RouteReflector.RouteReflectorClusterId != "" {
			t.Errorf("cluster ID %q without one configured", got.RouteReflector.RouteReflectorClusterId)
		}
	})
	t.Run("restart time limits", func(t *testing.T) {
		for in, want := range map[time.Duration][2]uint32{
			10 * time.Millisecond: {1, 1},
			10 * time.Second:      {10, 10},
			2 * time.Hour:         {4095, 30},
		} {
			g := testGlobal
			g.GracefulRestart = in
			got, err := peerToAPI(g, node(2), false)
			if err != nil {
				t.Fatal(err)
			}
			if gr := got.GracefulRestart; gr.RestartTime != want[0] || gr.DeferralTime != want[1] {
				t.Errorf("restart %v: restart/deferral %d/%d, want %d/%d", in, gr.RestartTime, gr.DeferralTime, want[0], want[1])
			}
		}
	})
	t.Run("invalid", func(t *testing.T) {
		if _, err := peerToAPI(testGlobal, model.Peer{ASN: 1}, false); err == nil {
			t.Error("no error for a peer without address")
		}
	})
}

func assertProto(t *testing.T, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Fatalf("got\n%v\nwant\n%v", got, want)
	}
}
