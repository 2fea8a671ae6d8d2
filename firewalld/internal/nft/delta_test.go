package nft

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// randomDatapath draws a Datapath from a small universe, so that two draws
// share much and differ somewhat (bad input included: IPv4-mapped
// addresses, overlapping regions, empty port ranges).
func randomDatapath(r *rand.Rand) *model.Datapath {
	d := model.NewDatapath()
	pick := func(n int) bool { return r.IntN(n) == 0 }
	addrs := []netip.Addr{addr("::ffff:198.18.128.1"), addr("2001:db8:80::5"), addr("2001:db8:80::6")}
	for i := range 12 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{198, 18, 128, byte(i + 1)}))
	}
	groups := []model.ID{1, 2, 3, 4}
	idents := []model.ID{10, 11, 12, 13, 14}
	for _, p := range []string{"198.18.128.0/24", "198.18.129.0/24", "198.18.128.0/23", "2001:db8:80::/64"} {
		if pick(2) {
			d.LocalCIDRs = append(d.LocalCIDRs, netip.MustParsePrefix(p))
		}
	}
	for _, a := range addrs {
		if pick(2) {
			d.KnownLocal[a] = struct{}{}
		}
		if pick(3) {
			d.IngressGroup[a] = groups[r.IntN(len(groups))]
		}
		if pick(3) {
			d.EgressGroup[a] = groups[r.IntN(len(groups))]
		}
		if pick(2) {
			d.PodIdent[a] = idents[r.IntN(len(idents))]
		}
	}
	for i := range 4 {
		if pick(2) {
			from := netip.AddrFrom4([4]byte{198, 18, byte(i * 10), 0})
			to := netip.AddrFrom4([4]byte{198, 18, byte(i*10 + r.IntN(15)), 255})
			d.Regions = append(d.Regions, model.Region{From: from, To: to, Ident: idents[r.IntN(len(idents))]})
		}
	}
	ports := []model.PortRange{tcp(80), tcp(443), model.AllTraffic, {ProtoFrom: 17, ProtoTo: 17, PortFrom: 53, PortTo: 53}, {ProtoFrom: 6, ProtoTo: 6, PortFrom: 9, PortTo: 1}}
	for range 8 {
		a := model.Allow{Group: groups[r.IntN(len(groups))], Ident: idents[r.IntN(len(idents))], Ports: ports[r.IntN(len(ports))]}
		if pick(2) {
			d.IngressAllow[a] = struct{}{}
		} else {
			d.EgressAllow[a] = struct{}{}
		}
		any := model.AnyAllow{Group: a.Group, Ports: a.Ports}
		if pick(3) {
			d.IngressAny[any] = struct{}{}
		} else if pick(3) {
			d.EgressAny[any] = struct{}{}
		}
	}
	return d
}

// The delta path (comparing Datapaths) computes what diffing the two
// encodings does, and the kernel ends up as a fresh table would.
func TestDeltaMatchesFullDiff(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rs := newRuleset(logConfig{})
	for i := range 300 {
		a, b := randomDatapath(r), randomDatapath(r)
		ea := encode(a)
		want := plan(rs, &ea, encode(b), "")
		got := planDelta(delta(a, b))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("draw %d: delta %+v, full diff %+v (chains %v %v, %v %v)", i, got.result(false), want.result(false),
				got.addChains, got.delChains, want.addChains, want.delChains)
		}

		f := NewFake(Config{})
		if _, err := f.Apply(a); err != nil {
			t.Fatalf("draw %d: %v", i, err)
		}
		res, err := f.Apply(b)
		if err != nil {
			t.Fatalf("draw %d: delta Apply: %v", i, err)
		}
		if res.Full {
			t.Fatalf("draw %d: the second Apply read the kernel", i)
		}
		fresh := NewFake(Config{})
		if _, err := fresh.Apply(b); err != nil {
			t.Fatal(err)
		}
		if g, w := fmt.Sprint(f.Dump().Sets, f.Dump().Chains), fmt.Sprint(fresh.Dump().Sets, fresh.Dump().Chains); g != w {
			t.Fatalf("draw %d: after the delta\n%s\nfresh\n%s", i, g, w)
		}
	}
}
