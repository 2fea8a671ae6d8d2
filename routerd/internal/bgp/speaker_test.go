//go:debug multipathtcp=0

// The directive above keeps the listeners of the speakers these tests run
// on plain TCP, whatever go.work or go.mod say (see the package doc): on
// an MPTCP listener GoBGP cannot set TCP MD5 keys.

package bgp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/zap/zaptest"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// localRIB lists the prefixes and next hops of the speaker's own paths in
// GoBGP's global RIB.
func localRIB(t *testing.T, s *Speaker) map[netip.Prefix]netip.Addr {
	t.Helper()
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	out := make(map[netip.Prefix]netip.Addr)
	for _, f := range []*api.Family{familyIPv4, familyIPv6} {
		err := srv.ListPath(t.Context(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: f}, func(d *api.Destination) {
			for _, p := range d.GetPaths() {
				if p.GetNeighborIp() != "<nil>" {
					continue
				}
				p.NeighborIp = "198.18.0.1" // read it as if it were learned
				prefix, lp, ok, err := learnedPath(p)
				if err != nil || !ok {
					t.Errorf("local path %v: %v", p, err)
					continue
				}
				out[prefix] = lp.NextHop
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestSpeakerWithoutSessions runs a real GoBGP that neither listens nor
// has neighbours, so it needs no root and opens no socket.
func TestSpeakerWithoutSessions(t *testing.T) {
	ctx := t.Context()
	s := New(zaptest.NewLogger(t))
	t.Cleanup(func() { _ = s.Stop() })
	g := testGlobal
	g.ListenPort = -1
	nh := netip.MustParseAddr("198.18.0.1")

	// Before Start: recorded, not applied, no error.
	if err := s.SetAdvertisements(ctx, []model.Advertisement{adv("198.19.1.0/24")}, nh); err != nil {
		t.Fatal(err)
	}
	if ps, err := s.Peers(ctx); ps != nil || err != nil {
		t.Fatalf("peers before start: %v %v", ps, err)
	}
	for _, bad := range []model.Global{
		{ASN: 64512, ListenPort: -1},
		{RouterID: netip.MustParseAddr("2001:db8::1"), ASN: 64512},
		{RouterID: nh},
		{RouterID: nh, ASN: 64512, ListenPort: 70000},
		{RouterID: nh, ASN: 64512, ListenAddresses: []netip.Addr{{}}},
	} {
		if err := s.Start(ctx, bad); err == nil {
			t.Errorf("no error starting with %+v", bad)
		}
	}
	if err := s.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	want := map[netip.Prefix]netip.Addr{netip.MustParsePrefix("198.19.1.0/24"): nh}
	if got := localRIB(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("RIB after start %v, want %v", got, want)
	}

	// Declarative: the new set replaces the old one. The IPv6 prefix has
	// no IPv6 next hop: reported, the others applied.
	err := s.SetAdvertisements(ctx, []model.Advertisement{adv("198.19.2.0/24"), adv("198.19.3.0/24"), adv("2001:db8:1::/64")}, nh)
	if err == nil || !strings.Contains(err.Error(), "2001:db8:1::/64") {
		t.Errorf("error %v", err)
	}
	want = map[netip.Prefix]netip.Addr{netip.MustParsePrefix("198.19.2.0/24"): nh, netip.MustParsePrefix("198.19.3.0/24"): nh}
	if got := localRIB(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("RIB %v, want %v", got, want)
	}
	nh6 := netip.MustParseAddr("2001:db8::1")
	if err := s.SetAdvertisements(ctx, []model.Advertisement{adv("2001:db8:1::/64")}, nh6); err != nil {
		t.Fatal(err)
	}
	want = map[netip.Prefix]netip.Addr{netip.MustParsePrefix("2001:db8:1::/64"): nh6}
	if got := localRIB(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("RIB %v, want %v", got, want)
	}
	// Local paths are not learned paths.
	if p := s.Paths(); len(p) != 0 {
		t.Fatalf("paths %v", p)
	}

	// The same Global is no restart; another one restarts and applies the
	// desired state again.
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if err := s.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	if s.srv != srv {
		t.Fatal("restarted with the same Global")
	}
	g.ASN = 64513
	if err := s.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	if s.srv == srv {
		t.Fatal("not restarted with a new AS")
	}
	if got := localRIB(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("RIB after restart %v, want %v", got, want)
	}

	// A peer that cannot be configured is reported and not added (no
	// valid peer here: it would dial).
	if err := s.SetPeers(ctx, []model.Peer{{Name: "broken", ASN: 1}}); err == nil {
		t.Error("no error for a peer without address")
	}
	if ps, err := s.Peers(ctx); len(ps) != 0 || err != nil {
		t.Fatalf("peers %v %v", ps, err)
	}

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if ps, err := s.Peers(ctx); ps != nil || err != nil {
		t.Fatalf("peers after stop: %v %v", ps, err)
	}
	// Started again after Stop: the desired state comes back, the broken
	// peer with it.
	if err := s.Start(ctx, g); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("error %v, want the broken peer's", err)
	}
	if got := localRIB(t, s); !reflect.DeepEqual(got, want) {
		t.Fatalf("RIB after stop and start %v, want %v", got, want)
	}
}
