package nft

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// universe is what random Datapaths are drawn from: small, so that two
// draws share much and differ somewhat. Bad input is included (an
// IPv4-mapped address, an empty range, an empty port range); overlapping
// peer elements are not (the model rules them out, and only a full Apply
// can leave them out).
type universe struct {
	addrs  []netip.Addr
	ranges []model.PeerElem // From..To of peer 0, disjoint from each other and from addrs
	groups []model.ID
	peers  []model.ID
	ports  []model.PortRange
	cidrs  []netip.Prefix
}

func newUniverse() universe {
	u := universe{
		addrs:  []netip.Addr{addr("::ffff:198.18.128.1"), addr("2001:db8:80::5"), addr("2001:db8:80::6")},
		groups: []model.ID{1, 2, 3, 4},
		peers:  []model.ID{10, 11, 12, 13, 14},
		ports: []model.PortRange{tcp(80), tcp(443), model.AllTraffic, udp(53),
			{ProtoFrom: 6, ProtoTo: 6, PortFrom: 9000, PortTo: 9100}, {ProtoFrom: 6, ProtoTo: 6, PortFrom: 0, PortTo: 65535},
			{ProtoFrom: 6, ProtoTo: 6, PortFrom: 9, PortTo: 1}},
		cidrs: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/24"), netip.MustParsePrefix("198.18.129.0/24"),
			netip.MustParsePrefix("198.18.128.0/23"), netip.MustParsePrefix("2001:db8:80::/64")},
		ranges: []model.PeerElem{
			block(0, "198.18.0.0", "198.18.0.255"), block(0, "198.18.1.0", "198.18.1.255"), // adjacent
			block(0, "198.18.10.0", "198.18.19.255"), block(0, "2001:db8:1::", "2001:db8:1::ffff"),
			block(0, "198.18.30.9", "198.18.30.1"), // empty
		},
	}
	for i := range 12 {
		u.addrs = append(u.addrs, netip.AddrFrom4([4]byte{198, 18, 128, byte(i + 1)}))
	}
	return u
}

func (u universe) rules(r *rand.Rand) []model.Rule {
	var out []model.Rule
	for range r.IntN(4) {
		p := model.AnyPeer
		if r.IntN(4) > 0 {
			p = u.peers[r.IntN(len(u.peers))]
		}
		out = append(out, model.Rule{Peer: p, Ports: u.ports[r.IntN(len(u.ports))]})
	}
	return out
}

func (u universe) elem(r *rand.Rand) model.PeerElem {
	p := u.peers[r.IntN(len(u.peers))]
	if r.IntN(4) == 0 {
		e := u.ranges[r.IntN(len(u.ranges))]
		e.Peer = p
		return e
	}
	a := u.addrs[r.IntN(len(u.addrs))]
	return model.PeerElem{Peer: p, From: a, To: a}
}

// datapath draws a Datapath.
func (u universe) datapath(r *rand.Rand) *model.Datapath {
	d := model.NewDatapath()
	pick := func(n int) bool { return r.IntN(n) == 0 }
	for _, p := range u.cidrs {
		if pick(2) {
			d.LocalCIDRs = append(d.LocalCIDRs, p)
		}
	}
	for _, a := range u.addrs {
		if pick(2) {
			d.KnownLocal[a] = struct{}{}
		}
		if pick(3) {
			d.IngressGroup[a] = u.groups[r.IntN(len(u.groups))]
		}
		if pick(3) {
			d.EgressGroup[a] = u.groups[r.IntN(len(u.groups))]
		}
	}
	for _, g := range u.groups {
		for _, dir := range directions {
			if pick(2) {
				d.Chains[model.GroupKey{Direction: dir, ID: g}] = u.rules(r)
			}
		}
	}
	for range 12 {
		d.PeerElems[u.elem(r)] = struct{}{}
	}
	return d
}

// change changes d a little, as the compiler would, and returns the Delta.
func (u universe) change(r *rand.Rand, d *model.Datapath) *model.Delta {
	delta := model.NewDelta()
	for range 1 + r.IntN(6) {
		a := u.addrs[r.IntN(len(u.addrs))]
		switch r.IntN(9) {
		case 0:
			delta.KnownLocal.Put(d.KnownLocal, a)
		case 1:
			delta.KnownLocal.Remove(d.KnownLocal, a)
		case 2:
			delta.IngressGroup.Put(d.IngressGroup, a, u.groups[r.IntN(len(u.groups))], model.EqID)
		case 3:
			delta.EgressGroup.Remove(d.EgressGroup, a)
		case 4:
			k := model.GroupKey{Direction: directions[r.IntN(2)], ID: u.groups[r.IntN(len(u.groups))]}
			delta.Chains.Put(d.Chains, k, u.rules(r), model.EqRules)
		case 5:
			delta.Chains.Remove(d.Chains, model.GroupKey{Direction: directions[r.IntN(2)], ID: u.groups[r.IntN(len(u.groups))]})
		case 6:
			delta.PeerElems.Put(d.PeerElems, u.elem(r))
		case 7:
			delta.PeerElems.Remove(d.PeerElems, u.elem(r))
		case 8:
			c := []netip.Prefix{u.cidrs[r.IntN(len(u.cidrs))]}
			delta.LocalCIDRs, d.LocalCIDRs = &c, c
		}
	}
	return delta
}

// asRead is what a full read of a table holding s finds.
func asRead(rs *ruleset, s *state) *content {
	es, sets, chains := s.content()
	c := newContent()
	c.elems, c.sets = es, sets
	for k, rules := range chains {
		c.chains[k] = rs.fingerprint(k, rules)
	}
	return c
}

// The partial Apply (a delta between states) plans what a full diff of
// the two tables does.
func TestPartialApplyMatchesFullDiff(t *testing.T) {
	u := newUniverse()
	r := rand.New(rand.NewPCG(1, 2))
	rs := newRuleset(logConfig{})
	for i := range 500 {
		a, b := newState(u.datapath(r)), newState(u.datapath(r))
		want := plan(rs, asRead(rs, a), b, "")
		got := a.applyDelta(a.deltaTo(b))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("draw %d:\ndelta     %v %+v\nfull diff %v %+v", i, got, got.result(false), want, want.result(false))
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("draw %d: the state after the delta is not the new one", i)
		}
	}
}

// ApplyDelta over random sequences of changes leaves the table a fresh
// Apply of the same Datapath makes, and so does Apply.
func TestApplyDeltaMatchesApply(t *testing.T) {
	u := newUniverse()
	r := rand.New(rand.NewPCG(3, 4))
	var total Result
	for i := range 100 {
		d := u.datapath(r)
		viaDelta := freshFake(t, Config{LogGroup: 1, LogRate: 1}, d)
		viaApply := freshFake(t, Config{LogGroup: 1, LogRate: 1}, d)
		for step := range 20 {
			delta := u.change(r, d)
			res, err := viaDelta.ApplyDelta(d, delta)
			if err != nil {
				t.Fatalf("draw %d, step %d: ApplyDelta: %v", i, step, err)
			}
			if res.Full {
				t.Fatalf("draw %d, step %d: ApplyDelta read the kernel", i, step)
			}
			applied, err := viaApply.Apply(d)
			if err != nil {
				t.Fatalf("draw %d, step %d: Apply: %v", i, step, err)
			}
			if res != applied {
				t.Fatalf("draw %d, step %d: ApplyDelta %+v, Apply %+v", i, step, res, applied)
			}
			total.ElementsAdded += res.ElementsAdded
			total.ElementsDeleted += res.ElementsDeleted
			total.ChainsAdded += res.ChainsAdded
			total.ChainsChanged += res.ChainsChanged
			total.ChainsDeleted += res.ChainsDeleted
			total.PeerSetsAdded += res.PeerSetsAdded
			total.PeerSetsDeleted += res.PeerSetsDeleted
			fresh := freshFake(t, Config{LogGroup: 1, LogRate: 1}, d)
			sameTable(t, "ApplyDelta", viaDelta, fresh)
			sameTable(t, "Apply", viaApply, fresh)
		}
		// Nothing differs from what a full read finds.
		viaDelta.Invalidate()
		if res := mustApply(t, viaDelta, d); res != (Result{Full: true}) {
			t.Fatalf("draw %d: full Apply after the deltas %+v", i, res)
		}
	}
	// The draws exercised every kind of change.
	t.Logf("over all steps: %+v", total)
	if total.ElementsAdded == 0 || total.ElementsDeleted == 0 || total.ChainsAdded == 0 || total.ChainsChanged == 0 ||
		total.ChainsDeleted == 0 || total.PeerSetsAdded == 0 || total.PeerSetsDeleted == 0 {
		t.Fatalf("some kind of change never happened: %+v", total)
	}
}
