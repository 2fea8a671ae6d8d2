package bgp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

func adv(prefix string) model.Advertisement {
	return model.Advertisement{Prefix: netip.MustParsePrefix(prefix), Why: "test"}
}

func ann(prefix, nextHop string) announcement {
	return announcement{netip.MustParsePrefix(prefix), netip.MustParseAddr(nextHop)}
}

func TestPlanAdverts(t *testing.T) {
	nh4, nh6 := netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:db8::1")
	have := map[netip.Prefix]netip.Addr{
		netip.MustParsePrefix("198.19.1.0/24"): nh4,
		netip.MustParsePrefix("198.19.2.0/24"): nh4,
	}
	t.Run("no change", func(t *testing.T) {
		plan, err := planAdverts(have, []model.Advertisement{adv("198.19.2.0/24"), adv("198.19.1.0/24")}, nh4)
		if err != nil || !reflect.DeepEqual(plan, advertPlan{}) {
			t.Fatalf("plan %+v, err %v; want nothing to do", plan, err)
		}
	})
	t.Run("announce and withdraw", func(t *testing.T) {
		plan, err := planAdverts(have, []model.Advertisement{adv("198.19.3.0/24"), adv("198.19.1.0/24"), adv("198.19.3.0/24")}, nh4)
		if err != nil {
			t.Fatal(err)
		}
		want := advertPlan{
			Announce: []announcement{ann("198.19.3.0/24", "198.18.0.1")},
			Withdraw: []announcement{ann("198.19.2.0/24", "198.18.0.1")},
		}
		if !reflect.DeepEqual(plan, want) {
			t.Fatalf("plan\n%+v\nwant\n%+v", plan, want)
		}
		got := plan.apply(have)
		if len(got) != 2 || got[netip.MustParsePrefix("198.19.3.0/24")] != nh4 {
			t.Fatalf("applied %v", got)
		}
	})
	t.Run("next hop change announces again, without withdrawal", func(t *testing.T) {
		nh := netip.MustParseAddr("198.18.0.9")
		plan, err := planAdverts(have, []model.Advertisement{adv("198.19.1.0/24"), adv("198.19.2.0/24")}, nh)
		if err != nil {
			t.Fatal(err)
		}
		want := advertPlan{Announce: []announcement{ann("198.19.1.0/24", "198.18.0.9"), ann("198.19.2.0/24", "198.18.0.9")}}
		if !reflect.DeepEqual(plan, want) {
			t.Fatalf("plan\n%+v\nwant\n%+v", plan, want)
		}
	})
	t.Run("host bits are cleared", func(t *testing.T) {
		plan, err := planAdverts(have, []model.Advertisement{adv("198.19.1.7/24"), adv("198.19.2.0/24")}, nh4)
		if err != nil || !reflect.DeepEqual(plan, advertPlan{}) {
			t.Fatalf("plan %+v, err %v; want nothing to do", plan, err)
		}
	})
	t.Run("families", func(t *testing.T) {
		want := []model.Advertisement{adv("198.19.1.0/24"), adv("2001:db8:1::/64")}
		// An IPv6 next hop is for the IPv6 prefix only: the IPv4 one is
		// reported and withdrawn.
		plan, err := planAdverts(have, want, nh6)
		if err == nil || !strings.Contains(err.Error(), "198.19.1.0/24 (test): no next hop of its family") {
			t.Errorf("error %v", err)
		}
		wantPlan := advertPlan{
			Announce: []announcement{ann("2001:db8:1::/64", "2001:db8::1")},
			Withdraw: []announcement{ann("198.19.1.0/24", "198.18.0.1"), ann("198.19.2.0/24", "198.18.0.1")},
		}
		if !reflect.DeepEqual(plan, wantPlan) {
			t.Fatalf("plan\n%+v\nwant\n%+v", plan, wantPlan)
		}
		// No next hop: each family's unspecified address (GoBGP then
		// uses each session's local address).
		plan, err = planAdverts(nil, want, netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		wantPlan = advertPlan{Announce: []announcement{ann("198.19.1.0/24", "0.0.0.0"), ann("2001:db8:1::/64", "::")}}
		if !reflect.DeepEqual(plan, wantPlan) {
			t.Fatalf("plan\n%+v\nwant\n%+v", plan, wantPlan)
		}
	})
	t.Run("bad prefixes", func(t *testing.T) {
		plan, err := planAdverts(nil, []model.Advertisement{
			{Why: "zero"},
			{Prefix: netip.PrefixFrom(netip.MustParseAddr("::ffff:198.19.0.0"), 120), Why: "mapped"},
			adv("198.19.4.0/24"),
		}, nh4)
		if err == nil || !strings.Contains(err.Error(), "(zero): invalid prefix") || !strings.Contains(err.Error(), "(mapped): IPv4-mapped") {
			t.Errorf("error %v", err)
		}
		if want := (advertPlan{Announce: []announcement{ann("198.19.4.0/24", "198.18.0.1")}}); !reflect.DeepEqual(plan, want) {
			t.Fatalf("plan %+v", plan)
		}
	})
}

func TestAdvertPath(t *testing.T) {
	nlri4, _ := anypb.New(&api.IPAddressPrefix{Prefix: "198.19.1.0", PrefixLen: 24})
	nlri6, _ := anypb.New(&api.IPAddressPrefix{Prefix: "2001:db8:1::", PrefixLen: 64})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	nh4, _ := anypb.New(&api.NextHopAttribute{NextHop: "198.18.0.1"})
	mp, _ := anypb.New(&api.MpReachNLRIAttribute{Family: familyIPv6, NextHops: []string{"2001:db8::1"}, Nlris: []*anypb.Any{nlri6}})

	got, err := advertPath(ann("198.19.1.0/24", "198.18.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	assertProto(t, got, &api.Path{Family: familyIPv4, Nlri: nlri4, Pattrs: []*anypb.Any{origin, nh4}})

	got, err = advertPath(ann("2001:db8:1::/64", "2001:db8::1"))
	if err != nil {
		t.Fatal(err)
	}
	assertProto(t, got, &api.Path{Family: familyIPv6, Nlri: nlri6, Pattrs: []*anypb.Any{origin, mp}})

	// What the speaker announces reads back as the same path.
	got, _ = advertPath(ann("198.19.1.0/24", "198.18.0.1"))
	got.NeighborIp = "198.18.0.1"
	prefix, path, learned, err := learnedPath(got)
	if err != nil || !learned || path != (model.Path{Prefix: prefix, NextHop: netip.MustParseAddr("198.18.0.1"), Peer: netip.MustParseAddr("198.18.0.1")}) {
		t.Fatalf("read back %v %+v %v %v", prefix, path, learned, err)
	}
}
