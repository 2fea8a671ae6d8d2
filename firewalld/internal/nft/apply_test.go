package nft

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// baseSets and baseChains are the fake kernel's table for baseDatapath.
func baseSets() map[string][]string {
	return map[string][]string{
		"local_cidrs4":    {"198.18.128.0/24"},
		"local_cidrs6":    {"2001:db8:80::/64"},
		"known_local4":    {"198.18.128.2", "198.18.128.3"},
		"known_local6":    {"2001:db8:80::2"},
		"ing_group4":      {"198.18.128.2 : jump in-0000a001", "198.18.128.3 : jump in-0000a002"},
		"ing_group6":      {"2001:db8:80::2 : jump in-0000a001"},
		"eg_group4":       {"198.18.128.3 : jump out-0000a002"},
		"eg_group6":       {},
		"peer-0000b001-4": {"198.18.128.2"},
		"peer-0000b001-6": {"2001:db8:80::2"},
		"peer-0000b002-4": {"198.18.128.3", "198.18.140.7"},
		"peer-0000b002-6": {},
		"peer-0000c001-4": {"198.18.0.0/24"},
		"peer-0000c001-6": {},
	}
}

func baseChains() map[string][]string {
	return map[string][]string{
		"in-0000a001": {
			"udp dport 53 return",
			"ip saddr @peer-0000b002-4 tcp dport 8080 return",
			"ip6 saddr @peer-0000b002-6 tcp dport 8080 return",
			"ip saddr @peer-0000c001-4 tcp dport 8000-8999 return",
			"ip6 saddr @peer-0000c001-6 tcp dport 8000-8999 return",
			"counter packets 0 bytes 0 drop",
		},
		"in-0000a002": {
			"ip saddr @peer-0000b001-4 tcp dport 5432 return",
			"ip6 saddr @peer-0000b001-6 tcp dport 5432 return",
			"counter packets 0 bytes 0 drop",
		},
		"out-0000a002": {
			"ip daddr @peer-0000b002-4 return",
			"ip6 daddr @peer-0000b002-6 return",
			"counter packets 0 bytes 0 drop",
		},
	}
}

// sameTable fails unless the two fakes' kernels hold the same table.
func sameTable(t *testing.T, what string, got, want *Fake) {
	t.Helper()
	g, w := got.Dump(), want.Dump()
	if g.Exists != w.Exists || !reflect.DeepEqual(g.Sets, w.Sets) || !reflect.DeepEqual(g.Chains, w.Chains) {
		t.Fatalf("%s: the table is\n%v\n%v\nwant\n%v\n%v", what, g.Sets, g.Chains, w.Sets, w.Chains)
	}
}

// freshFake is a fake with d applied to an empty kernel.
func freshFake(t *testing.T, cfg Config, d *model.Datapath) *Fake {
	t.Helper()
	f := NewFake(cfg)
	mustApply(t, f, d)
	return f
}

func TestFirstApplyCreatesThenNothing(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	res := mustApply(t, f, d)
	want := Result{
		Writes: recreateWrites(Config{}, d), Full: true, Recreate: true, Reason: "table missing",
		// local CIDRs 2, known 3, ingress groups 3, egress group 1, peer
		// elements 5.
		ElementsAdded: 2 + 3 + 3 + 1 + 5,
		ChainsAdded:   3, // in-0000a001, in-0000a002, out-0000a002
		PeerSetsAdded: 6,
	}
	if res != want {
		t.Fatalf("first Apply:\n got %+v\nwant %+v", res, want)
	}
	dump := f.Dump()
	if !dump.Exists || dump.Transactions != 1 || dump.Writes != res.Writes || dump.Last.Writes != res.Writes {
		t.Fatalf("dump %+v", dump)
	}
	if !reflect.DeepEqual(dump.Sets, baseSets()) {
		t.Fatalf("sets:\n got %v\nwant %v", dump.Sets, baseSets())
	}
	if !reflect.DeepEqual(dump.Chains, baseChains()) {
		t.Fatalf("chains:\n got %v\nwant %v", dump.Chains, baseChains())
	}

	// The same Datapath again: nothing at all, not even a read.
	if res := mustApply(t, f, baseDatapath()); res != (Result{}) {
		t.Fatalf("repeated Apply %+v, want nothing", res)
	}
	if res := mustApplyDelta(t, f, baseDatapath(), model.NewDelta()); res != (Result{}) {
		t.Fatalf("empty delta %+v, want nothing", res)
	}
	// A full one reads, finds everything, writes nothing.
	f.Invalidate()
	if res := mustApply(t, f, d); res != (Result{Full: true}) {
		t.Fatalf("full Apply of the same Datapath %+v, want a read and nothing else", res)
	}
	if n := f.Dump().Transactions; n != 1 {
		t.Fatalf("%d transactions, want 1", n)
	}
}

func TestRestartWritesNothing(t *testing.T) {
	cfg := Config{LogGroup: 3, LogRate: 10}
	f := NewFake(cfg)
	mustApply(t, f, baseDatapath())
	if res := mustApply(t, f.Restarted(cfg), baseDatapath()); res != (Result{Full: true}) {
		t.Fatalf("after restart %+v, want a read and no write", res)
	}
	// ApplyDelta of a restarted firewalld (it trusts nothing yet) is a
	// full Apply too.
	if res := mustApplyDelta(t, f.Restarted(cfg), baseDatapath(), model.NewDelta()); res != (Result{Full: true}) {
		t.Fatalf("ApplyDelta after restart %+v, want a read and no write", res)
	}
	if n := f.Dump().Transactions; n != 1 {
		t.Fatalf("%d transactions, want 1", n)
	}
}

func TestCallerMayChangeItsDatapath(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)
	// The caller reuses its maps: the applier must have kept its own copy.
	d.KnownLocal[addr("198.18.128.4")] = struct{}{}
	res := mustApply(t, f, d)
	if res != (Result{Writes: 1, ElementsAdded: 1}) {
		t.Fatalf("Apply after the caller changed its map %+v, want one element added", res)
	}

	// The compiler changes its Datapath and Delta in place after
	// ApplyDelta: rules handed over are copied.
	delta := model.NewDelta()
	rules := []model.Rule{{Peer: peerWeb, Ports: tcp(1)}}
	delta.Chains.Put(d.Chains, inDB, rules, model.EqRules)
	mustApplyDelta(t, f, d, delta)
	rules[0].Ports = tcp(2)
	clear(delta.Chains.Set)
	d.Chains[inDB] = []model.Rule{{Peer: peerWeb, Ports: tcp(1)}}
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("the table changed with the caller's rules: %+v", res)
	}
	if got := f.Dump().Chains["in-0000a002"][0]; got != "ip saddr @peer-0000b001-4 tcp dport 1 return" {
		t.Fatalf("in-0000a002 starts with %q", got)
	}
}

// modelDelta is the Delta from old to new, as the compiler gives it.
func modelDelta(old, new *model.Datapath) *model.Delta {
	d := model.NewDelta()
	o := old.Clone()
	if !reflect.DeepEqual(old.LocalCIDRs, new.LocalCIDRs) {
		c := append([]netip.Prefix(nil), new.LocalCIDRs...)
		d.LocalCIDRs = &c
	}
	for a := range new.KnownLocal {
		d.KnownLocal.Put(o.KnownLocal, a)
	}
	for a := range old.KnownLocal {
		if _, ok := new.KnownLocal[a]; !ok {
			d.KnownLocal.Remove(o.KnownLocal, a)
		}
	}
	for _, m := range []struct {
		md       model.MapDelta[netip.Addr, model.ID]
		o, old   map[netip.Addr]model.ID
		newGroup map[netip.Addr]model.ID
	}{{d.IngressGroup, o.IngressGroup, old.IngressGroup, new.IngressGroup}, {d.EgressGroup, o.EgressGroup, old.EgressGroup, new.EgressGroup}} {
		for a, g := range m.newGroup {
			m.md.Put(m.o, a, g, model.EqID)
		}
		for a := range m.old {
			if _, ok := m.newGroup[a]; !ok {
				m.md.Remove(m.o, a)
			}
		}
	}
	for k, rules := range new.Chains {
		d.Chains.Put(o.Chains, k, rules, model.EqRules)
	}
	for k := range old.Chains {
		if _, ok := new.Chains[k]; !ok {
			d.Chains.Remove(o.Chains, k)
		}
	}
	for e := range new.PeerElems {
		d.PeerElems.Put(o.PeerElems, e)
	}
	for e := range old.PeerElems {
		if _, ok := new.PeerElems[e]; !ok {
			d.PeerElems.Remove(o.PeerElems, e)
		}
	}
	return d
}

// deltaCase is one change of the Datapath after baseDatapath and the
// minimal transaction it takes; the kernel tests run the same cases.
type deltaCase struct {
	name   string
	change func(*model.Datapath)
	want   Result
	sets   map[string][]string // sets that must then hold exactly this
	chains map[string][]string // chains that must then hold exactly this
	gone   []string            // sets and chains that must then be gone
}

func deltaCases() []deltaCase {
	return []deltaCase{
		{
			name:   "a new pod becomes known",
			change: func(d *model.Datapath) { d.KnownLocal[addr("198.18.128.4")] = struct{}{} },
			want:   Result{Writes: 1, ElementsAdded: 1},
			sets:   map[string][]string{"known_local4": {"198.18.128.2", "198.18.128.3", "198.18.128.4"}},
		},
		{
			name: "a pod joins an existing group and a peer",
			change: func(d *model.Datapath) {
				d.KnownLocal[addr("198.18.128.4")] = struct{}{}
				d.IngressGroup[addr("198.18.128.4")] = groupWeb
				d.PeerElems[pod(peerWeb, "198.18.128.4")] = struct{}{}
			},
			// known_local4, ing_group4, peer-0000b001-4: one message each.
			want: Result{Writes: 3, ElementsAdded: 3},
			sets: map[string][]string{
				"ing_group4":      {"198.18.128.2 : jump in-0000a001", "198.18.128.3 : jump in-0000a002", "198.18.128.4 : jump in-0000a001"},
				"peer-0000b001-4": {"198.18.128.2", "198.18.128.4"},
			},
		},
		{
			name: "a remote pod leaves a peer",
			change: func(d *model.Datapath) {
				delete(d.PeerElems, pod(peerApp, "198.18.140.7"))
			},
			want: Result{Writes: 1, ElementsDeleted: 1},
			sets: map[string][]string{"peer-0000b002-4": {"198.18.128.3"}},
		},
		{
			name: "a new group appears",
			change: func(d *model.Datapath) {
				d.EgressGroup[addr("198.18.128.2")] = 0x0000a003
				d.Chains[model.GroupKey{Direction: model.Egress, ID: 0x0000a003}] = []model.Rule{{Peer: peerApp, Ports: tcp(80)}}
			},
			// The chain and its three rules, then the eg_group4 element.
			want: Result{Writes: 1 + 3 + 1, ElementsAdded: 1, ChainsAdded: 1},
			sets: map[string][]string{"eg_group4": {"198.18.128.2 : jump out-0000a003", "198.18.128.3 : jump out-0000a002"}},
			chains: map[string][]string{"out-0000a003": {
				"ip daddr @peer-0000b002-4 tcp dport 80 return", "ip6 daddr @peer-0000b002-6 tcp dport 80 return", "counter packets 0 bytes 0 drop"}},
		},
		{
			name: "a group disappears",
			change: func(d *model.Datapath) {
				delete(d.EgressGroup, addr("198.18.128.3"))
				delete(d.Chains, outDB)
			},
			// The eg_group4 element, then the chain (peer-0000b002 is still
			// named by in-0000a001).
			want: Result{Writes: 1 + 1, ElementsDeleted: 1, ChainsDeleted: 1},
			sets: map[string][]string{"eg_group4": {}},
			gone: []string{"out-0000a002"},
		},
		{
			name: "a pod moves to another group, its old one and a peer disappear",
			change: func(d *model.Datapath) {
				d.IngressGroup[addr("198.18.128.3")] = groupWeb
				delete(d.Chains, inDB)
			},
			// Its ing_group4 element is replaced (a delete and an add),
			// in-0000a002 goes, and with it the only rule naming
			// peer-0000b001 (its two sets).
			want: Result{Writes: 2 + 1 + 2, ElementsAdded: 1, ElementsDeleted: 1, ChainsDeleted: 1, PeerSetsDeleted: 2},
			sets: map[string][]string{"ing_group4": {"198.18.128.2 : jump in-0000a001", "198.18.128.3 : jump in-0000a001"}},
			gone: []string{"in-0000a002", "peer-0000b001-4", "peer-0000b001-6"},
		},
		{
			name: "a policy changes a chain's rules",
			change: func(d *model.Datapath) {
				d.Chains[inWeb] = append(d.Chains[inWeb], model.Rule{Peer: peerWeb, Ports: tcp(9090)})
			},
			// The chain flushed and its eight rules added again.
			want: Result{Writes: 1 + 8, ChainsChanged: 1},
			chains: map[string][]string{"in-0000a001": {
				"udp dport 53 return",
				"ip saddr @peer-0000b002-4 tcp dport 8080 return",
				"ip6 saddr @peer-0000b002-6 tcp dport 8080 return",
				"ip saddr @peer-0000c001-4 tcp dport 8000-8999 return",
				"ip6 saddr @peer-0000c001-6 tcp dport 8000-8999 return",
				"ip saddr @peer-0000b001-4 tcp dport 9090 return",
				"ip6 saddr @peer-0000b001-6 tcp dport 9090 return",
				"counter packets 0 bytes 0 drop",
			}},
		},
		{
			name: "a rule names a new peer",
			change: func(d *model.Datapath) {
				d.Chains[inDB] = []model.Rule{{Peer: peerWeb, Ports: tcp(5432)}, {Peer: 0x0000b003, Ports: model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: 0, PortTo: 65535}}}
				d.PeerElems[pod(0x0000b003, "198.18.140.9")] = struct{}{}
				d.PeerElems[pod(0x0000b003, "2001:db8:8c::9")] = struct{}{}
			},
			// Two sets, the chain flushed and its five rules, the two
			// sets' elements.
			want: Result{Writes: 2 + 1 + 5 + 2, ElementsAdded: 2, ChainsChanged: 1, PeerSetsAdded: 2},
			sets: map[string][]string{"peer-0000b003-4": {"198.18.140.9"}, "peer-0000b003-6": {"2001:db8:8c::9"}},
			chains: map[string][]string{"in-0000a002": {
				"ip saddr @peer-0000b001-4 tcp dport 5432 return",
				"ip6 saddr @peer-0000b001-6 tcp dport 5432 return",
				"ip saddr @peer-0000b003-4 meta l4proto tcp return",
				"ip6 saddr @peer-0000b003-6 meta l4proto tcp return",
				"counter packets 0 bytes 0 drop",
			}},
		},
		{
			name: "an ipBlock is split",
			change: func(d *model.Datapath) {
				delete(d.PeerElems, block(peerNet, "198.18.0.0", "198.18.0.255"))
				d.PeerElems[block(peerNet, "198.18.0.0", "198.18.0.127")] = struct{}{}
				d.PeerElems[block(peerNet, "198.18.0.129", "198.18.1.10")] = struct{}{}
			},
			want: Result{Writes: 2, ElementsAdded: 2, ElementsDeleted: 1},
			sets: map[string][]string{"peer-0000c001-4": {"198.18.0.0/25", "198.18.0.129-198.18.1.10"}},
		},
		{
			name: "a pod CIDR grows",
			change: func(d *model.Datapath) {
				d.LocalCIDRs[0] = netip.MustParsePrefix("198.18.128.0/23")
			},
			want: Result{Writes: 2, ElementsAdded: 1, ElementsDeleted: 1},
			sets: map[string][]string{"local_cidrs4": {"198.18.128.0/23"}},
		},
		{
			name: "elements of a peer no rule names",
			change: func(d *model.Datapath) {
				d.PeerElems[pod(0x0000dead, "198.18.140.1")] = struct{}{}
			},
			want: Result{},
			gone: []string{"peer-0000dead-4"},
		},
	}
}

// checkCase checks the table of f after tc.
func checkCase(t *testing.T, tc deltaCase, dump Dump) {
	t.Helper()
	for set, want := range tc.sets {
		if got := dump.Sets[set]; !reflect.DeepEqual(got, want) {
			t.Errorf("set %s: %v, want %v", set, got, want)
		}
	}
	for chain, want := range tc.chains {
		if got := dump.Chains[chain]; !reflect.DeepEqual(got, want) {
			t.Errorf("chain %s:\n got %q\nwant %q", chain, got, want)
		}
	}
	for _, name := range tc.gone {
		_, set := dump.Sets[name]
		_, chain := dump.Chains[name]
		if set || chain {
			t.Errorf("%s still there", name)
		}
	}
}

func TestDeltas(t *testing.T) {
	for _, tc := range deltaCases() {
		for _, how := range []string{"Apply", "ApplyDelta"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				f := freshFake(t, Config{}, baseDatapath())
				d := baseDatapath()
				tc.change(d)
				var res Result
				if how == "Apply" {
					res = mustApply(t, f, d)
				} else {
					res = mustApplyDelta(t, f, d, modelDelta(baseDatapath(), d))
				}
				if res != tc.want {
					t.Fatalf("%s:\n got %+v\nwant %+v", how, res, tc.want)
				}
				checkCase(t, tc, f.Dump())
				// What the fake kernel holds is what a fresh table would.
				sameTable(t, "after the change", f, freshFake(t, Config{}, d))
				if res := mustApply(t, f, d); res != (Result{}) {
					t.Fatalf("repeated Apply %+v, want nothing", res)
				}
				// And back: the change in the other direction undoes it.
				if how == "Apply" {
					mustApply(t, f, baseDatapath())
				} else {
					mustApplyDelta(t, f, baseDatapath(), modelDelta(d, baseDatapath()))
				}
				sameTable(t, "back to the base", f, freshFake(t, Config{}, baseDatapath()))
				// A full Apply finds nothing to repair.
				f.Invalidate()
				if res := mustApply(t, f, baseDatapath()); res != (Result{Full: true}) {
					t.Fatalf("full Apply after the changes %+v", res)
				}
			})
		}
	}
}

func TestPeerSetLifecycle(t *testing.T) {
	peer := model.ID(0x0000beef)
	only := model.GroupKey{Direction: model.Ingress, ID: 0x0000a009}
	d := baseDatapath()
	d.PeerElems[pod(peer, "198.18.140.20")] = struct{}{}
	f := freshFake(t, Config{}, d)
	if _, ok := f.Dump().Sets[peerSetName(peer, false)]; ok {
		t.Fatal("a peer no rule names has a set")
	}
	steps := []struct {
		what   string
		change func(*model.Datapath)
		want   Result
		exists bool
	}{
		{"a rule names the peer: its sets come with the elements it already had", func(d *model.Datapath) {
			d.Chains[inDB] = append(d.Chains[inDB], model.Rule{Peer: peer, Ports: tcp(1)})
		}, Result{Writes: 2 + 1 + 5 + 1, ElementsAdded: 1, ChainsChanged: 1, PeerSetsAdded: 2}, true},
		{"a second chain names it too", func(d *model.Datapath) {
			d.Chains[only] = []model.Rule{{Peer: peer, Ports: tcp(2)}}
		}, Result{Writes: 1 + 3, ChainsAdded: 1}, true},
		{"its elements change while named", func(d *model.Datapath) {
			d.PeerElems[pod(peer, "198.18.140.21")] = struct{}{}
		}, Result{Writes: 1, ElementsAdded: 1}, true},
		{"the first chain stops naming it", func(d *model.Datapath) {
			d.Chains[inDB] = d.Chains[inDB][:1]
		}, Result{Writes: 1 + 3, ChainsChanged: 1}, true},
		{"the second chain goes: the sets go with it", func(d *model.Datapath) {
			delete(d.Chains, only)
		}, Result{Writes: 1 + 2, ChainsDeleted: 1, PeerSetsDeleted: 2}, false},
		{"elements change while no rule names it: nothing written", func(d *model.Datapath) {
			delete(d.PeerElems, pod(peer, "198.18.140.20"))
			d.PeerElems[pod(peer, "198.18.140.22")] = struct{}{}
		}, Result{}, false},
		{"named again: the sets come back with its elements", func(d *model.Datapath) {
			d.Chains[only] = []model.Rule{{Peer: peer, Ports: tcp(2)}}
		}, Result{Writes: 2 + 1 + 3 + 1, ElementsAdded: 2, ChainsAdded: 1, PeerSetsAdded: 2}, true},
	}
	for _, how := range []string{"Apply", "ApplyDelta"} {
		f := freshFake(t, Config{}, d)
		cur := d.Clone()
		for _, s := range steps {
			next := cur.Clone()
			s.change(next)
			var res Result
			if how == "Apply" {
				res = mustApply(t, f, next)
			} else {
				res = mustApplyDelta(t, f, next, modelDelta(cur, next))
			}
			if res != s.want {
				t.Fatalf("%s, %s:\n got %+v\nwant %+v", how, s.what, res, s.want)
			}
			if _, ok := f.Dump().Sets[peerSetName(peer, true)]; ok != s.exists {
				t.Fatalf("%s, %s: set exists %v", how, s.what, ok)
			}
			sameTable(t, how+", "+s.what, f, freshFake(t, Config{}, next))
			cur = next
		}
		if got := f.Dump().Sets[peerSetName(peer, false)]; !reflect.DeepEqual(got, []string{"198.18.140.21", "198.18.140.22"}) {
			t.Fatalf("%s: peer set at the end %v", how, got)
		}
	}
}

func TestGroupWithoutRulesDeniesAll(t *testing.T) {
	// The model gives a chain for every group in use; one it forgot gets
	// an empty chain (everything dropped) rather than a dangling jump.
	d := baseDatapath()
	d.IngressGroup[addr("198.18.128.4")] = 0x0000a00f
	f := freshFake(t, Config{}, d)
	if got := f.Dump().Chains["in-0000a00f"]; !reflect.DeepEqual(got, []string{"counter packets 0 bytes 0 drop"}) {
		t.Fatalf("chain of a group without rules: %q", got)
	}
	// Through deltas: the chain comes with the first pod and goes with
	// the last; rules given later replace its drop-everything.
	g := freshFake(t, Config{}, baseDatapath())
	k := model.GroupKey{Direction: model.Ingress, ID: 0x0000a00f}
	steps := []struct {
		change func(*model.Datapath)
		want   Result
	}{
		{func(d *model.Datapath) { d.IngressGroup[addr("198.18.128.4")] = k.ID }, Result{Writes: 1 + 1 + 1, ElementsAdded: 1, ChainsAdded: 1}},
		{func(d *model.Datapath) { d.Chains[k] = []model.Rule{{Peer: model.AnyPeer, Ports: tcp(1)}} }, Result{Writes: 1 + 2, ChainsChanged: 1}},
		{func(d *model.Datapath) { delete(d.Chains, k) }, Result{Writes: 1 + 1, ChainsChanged: 1}},
		{func(d *model.Datapath) { delete(d.IngressGroup, addr("198.18.128.4")) }, Result{Writes: 1 + 1, ElementsDeleted: 1, ChainsDeleted: 1}},
	}
	cur := baseDatapath()
	for i, s := range steps {
		next := cur.Clone()
		s.change(next)
		if res := mustApplyDelta(t, g, next, modelDelta(cur, next)); res != s.want {
			t.Fatalf("step %d: %+v, want %+v", i, res, s.want)
		}
		sameTable(t, "after the step", g, freshFake(t, Config{}, next))
		cur = next
	}
}

func TestFailedTransactionMakesTheNextApplyFull(t *testing.T) {
	for _, how := range []string{"Apply", "ApplyDelta"} {
		f := freshFake(t, Config{}, baseDatapath())
		d := baseDatapath()
		d.KnownLocal[addr("198.18.128.4")] = struct{}{}
		apply := func() (Result, error) {
			if how == "Apply" {
				return f.Apply(d)
			}
			return f.ApplyDelta(d, modelDelta(baseDatapath(), d))
		}
		f.FailNext(errors.New("ENOBUFS"))
		if _, err := apply(); err == nil || !strings.Contains(err.Error(), "ENOBUFS") {
			t.Fatalf("%s with a failing transaction: %v", how, err)
		}
		if got := f.Dump().Sets["known_local4"]; len(got) != 2 {
			t.Fatalf("%s: a failed transaction changed the kernel: %v", how, got)
		}
		// The next call reads the kernel and writes the one element again.
		if res, err := apply(); err != nil || res != (Result{Writes: 1, Full: true, ElementsAdded: 1}) {
			t.Fatalf("%s after the error %+v, %v", how, res, err)
		}
	}
}

func TestFullApplyRepairsDrift(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)

	// Behind firewalld's back: an element added, another deleted, a
	// chain's rules changed, a peer set added and another deleted.
	stranger := addr("198.18.128.99").AsSlice()
	f.k.sets["known_local4"].put(elemID{key: string(stranger)}, elem{key: string(stranger)})
	f.k.sets["peer-0000b002-4"].remove(elemID{key: string(addr("198.18.140.7").AsSlice()), end: string(addr("198.18.140.7").AsSlice())})
	f.k.chains[inDB].fp = "edited"
	f.k.sets["peer-0000f00d-4"] = &memSet{spec: peerSetSpec("peer-0000f00d-4", false), elems: map[elemID]elem{}, ranges: map[elemID]elem{}}
	delete(f.k.sets, "peer-0000c001-6")

	// A partial Apply trusts what it wrote: nothing to do. A full one
	// adds the set, rewrites the chain (a flush, three rules), deletes
	// and adds an element, deletes the stranger set.
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("partial Apply %+v", res)
	}
	f.Invalidate()
	want := Result{Writes: 1 + 1 + 3 + 1 + 1 + 1, Full: true, ElementsAdded: 1, ElementsDeleted: 1, ChainsChanged: 1, PeerSetsAdded: 1, PeerSetsDeleted: 1}
	if res := mustApply(t, f, d); res != want {
		t.Fatalf("full Apply %+v, want %+v", res, want)
	}
	sameTable(t, "after repair", f, freshFake(t, Config{}, d))
}

func TestTamperedStaticPartIsRecreated(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)
	f.Tamper("chain pods: 9 rules, want 8")
	f.Invalidate()
	res := mustApply(t, f, d)
	if !res.Recreate || res.Reason != "chain pods: 9 rules, want 8" || res.Writes != recreateWrites(Config{}, d) || res.ChainsAdded != 3 {
		t.Fatalf("Apply after tampering %+v, want the table recreated", res)
	}
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("then %+v", res)
	}
}

func TestLogSettingsRewriteTheGroupChains(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)
	logging := Config{LogGroup: 7, LogRate: 5, LogBurst: 20}
	// Every group chain flushed and written again with its log rule (one
	// more rule each), in one transaction.
	res := mustApply(t, f.Restarted(logging), d)
	if want := (Result{Writes: 3 + (6 + 1) + (3 + 1) + (3 + 1), Full: true, ChainsChanged: 3}); res != want {
		t.Fatalf("restart with logging %+v, want %+v", res, want)
	}
	if got, want := f.Dump().Chains["in-0000a002"][2], `limit rate 5/second burst 20 packets log prefix "nodenet deny in 0000a002 " group 7`; got != want {
		t.Fatalf("log rule %q, want %q", got, want)
	}
	// A burst of 0 is the kernel's default, 5: written as 5, the same
	// rules as an explicit 5.
	defaulted := Config{LogGroup: 7, LogRate: 5}
	g := freshFake(t, defaulted, d)
	if res := mustApply(t, g.Restarted(Config{LogGroup: 7, LogRate: 5, LogBurst: 5}), d); res != (Result{Full: true}) {
		t.Fatalf("burst 0 and 5 differ: %+v", res)
	}
	if got, want := g.Dump().Chains["out-0000a002"][2], `limit rate 5/second log prefix "nodenet deny eg 0000a002 " group 7`; got != want {
		t.Fatalf("log rule %q, want %q", got, want)
	}
	// Without group chains the log settings are nowhere in the table.
	e := freshFake(t, Config{}, model.NewDatapath())
	if res := mustApply(t, e.Restarted(logging), model.NewDatapath()); res != (Result{Full: true}) {
		t.Fatalf("log settings changed without group chains: %+v", res)
	}
}

func TestBadConfig(t *testing.T) {
	f := NewFake(Config{LogGroup: 2})
	if _, err := f.Apply(baseDatapath()); err == nil || !strings.Contains(err.Error(), "log rate") {
		t.Fatalf("Apply with a log group and no rate: %v", err)
	}
	if _, err := f.ApplyDelta(baseDatapath(), model.NewDelta()); err == nil || !strings.Contains(err.Error(), "log rate") {
		t.Fatalf("ApplyDelta with a log group and no rate: %v", err)
	}
	if f.Dump().Exists {
		t.Fatal("a bad config wrote the table")
	}
}

func TestDelete(t *testing.T) {
	f := NewFake(Config{})
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if d := f.Dump(); d.Exists || d.Transactions != 0 {
		t.Fatalf("deleting no table wrote: %+v", d)
	}
	d := baseDatapath()
	mustApply(t, f, d)
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if dump := f.Dump(); dump.Exists {
		t.Fatalf("table still there: %+v", dump)
	}
	// The next Apply (or ApplyDelta) knows the table is gone.
	if res := mustApplyDelta(t, f, d, model.NewDelta()); !res.Recreate || !res.Full {
		t.Fatalf("ApplyDelta after Delete %+v, want the table created", res)
	}
}

func TestNilAndEmptyDatapath(t *testing.T) {
	f := NewFake(Config{})
	res := mustApply(t, f, nil)
	if !res.Recreate || res.ElementsAdded != 0 || res.ChainsAdded != 0 {
		t.Fatalf("Apply(nil) %+v, want an empty table", res)
	}
	if res := mustApply(t, f, &model.Datapath{}); res != (Result{}) {
		t.Fatalf("Apply of a zero Datapath after nil %+v, want nothing", res)
	}
	if res := mustApplyDelta(t, f, &model.Datapath{}, nil); res != (Result{}) {
		t.Fatalf("ApplyDelta without a delta %+v, want an Apply that finds nothing", res)
	}
}

func TestBadInputIsLeftOut(t *testing.T) {
	d := baseDatapath()
	// An IPv4-mapped address would collide with its IPv4 one; a zoned or
	// invalid address is no pod's.
	d.KnownLocal[addr("::ffff:198.18.128.2")] = struct{}{}
	d.KnownLocal[netip.Addr{}] = struct{}{}
	d.IngressGroup[addr("::ffff:198.18.128.2")] = 0x0000dead // no chain for it either
	d.EgressGroup[addr("fe80::1%eth0")] = 0x0000dead
	d.LocalCIDRs = append(d.LocalCIDRs, netip.Prefix{}, netip.MustParsePrefix("198.18.128.128/25")) // invalid; inside the /24
	for _, e := range []model.PeerElem{
		block(peerNet, "198.18.0.30", "198.18.0.20"),          // empty
		block(peerNet, "198.18.0.30", "2001:db8::1"),          // two families
		pod(peerWeb, "::ffff:198.18.128.9"),                   // mapped
		{Peer: peerWeb, From: netip.Addr{}, To: netip.Addr{}}, // invalid
		block(peerNet, "198.18.0.10", "198.18.0.20"),          // inside 198.18.0.0/24
		block(peerNet, "198.18.0.200", "198.18.1.5"),          // overlaps its end
	} {
		d.PeerElems[e] = struct{}{}
	}
	// Rules whose ports match nothing.
	d.Chains[inDB] = append(d.Chains[inDB],
		model.Rule{Peer: peerApp, Ports: model.PortRange{ProtoFrom: 17, ProtoTo: 6, PortFrom: 1, PortTo: 2}},
		model.Rule{Peer: 0x0000beef, Ports: model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: 90, PortTo: 80}})

	f := freshFake(t, Config{}, d)
	sameTable(t, "bad input", f, freshFake(t, Config{}, baseDatapath()))
	// The delta paths leave out the same, but for overlaps (which a full
	// Apply leaves out).
	g := freshFake(t, Config{}, baseDatapath())
	mustApply(t, g, d)
	sameTable(t, "bad input through a partial Apply", g, freshFake(t, Config{}, baseDatapath()))
	delete(d.PeerElems, block(peerNet, "198.18.0.10", "198.18.0.20"))
	delete(d.PeerElems, block(peerNet, "198.18.0.200", "198.18.1.5"))
	h := freshFake(t, Config{}, baseDatapath())
	mustApplyDelta(t, h, d, modelDelta(baseDatapath(), d))
	sameTable(t, "bad input through ApplyDelta", h, freshFake(t, Config{}, baseDatapath()))
}

func TestFakeCounters(t *testing.T) {
	f := NewFake(Config{})
	c, err := f.Counters()
	if err != nil || len(c.Denied) != 0 || c.Pending != (Counter{}) {
		t.Fatalf("counters without a table: %+v, %v", c, err)
	}
	mustApply(t, f, baseDatapath())
	if !f.Drop(inWeb, 3, 180) || !f.Drop(inDB, 1, 60) || !f.DropPending(1, 60) {
		t.Fatal("drops not counted")
	}
	if f.Drop(model.GroupKey{Direction: model.Egress, ID: groupWeb}, 1, 1) {
		t.Fatal("a drop counted by a group chain that does not exist")
	}
	c, err = f.Counters()
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{
		Denied:  map[model.GroupKey]Counter{inWeb: {3, 180}, inDB: {1, 60}, outDB: {}},
		Pending: Counter{1, 60},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("counters %+v, want %+v", c, want)
	}
	if got := f.Dump().Chains["in-0000a001"][5]; got != "counter packets 3 bytes 180 drop" {
		t.Fatalf("the drop rule lists as %q", got)
	}
	// A group that goes takes its counter with it; one whose rules are
	// rewritten starts again.
	d := baseDatapath()
	delete(d.Chains, inWeb)
	delete(d.IngressGroup, addr("198.18.128.2"))
	delete(d.IngressGroup, addr("2001:db8:80::2"))
	d.Chains[inDB] = []model.Rule{{Peer: peerWeb, Ports: tcp(5433)}}
	mustApply(t, f, d)
	c, _ = f.Counters()
	if want := map[model.GroupKey]Counter{inDB: {}, outDB: {}}; !reflect.DeepEqual(c.Denied, want) || c.Pending != (Counter{1, 60}) {
		t.Fatalf("counters after the changes: %+v", c)
	}
}

func TestFakeRejectsWhatTheKernelRejects(t *testing.T) {
	rs := newRuleset(logConfig{})
	k := &memKernel{}
	if err := k.commit(rs, plan(rs, nil, newState(baseDatapath()), "table missing")); err != nil {
		t.Fatal(err)
	}
	web := string(addr("198.18.128.2").AsSlice())
	other := string(addr("198.18.128.9").AsSlice())
	for name, bad := range map[string]*tx{
		"delete a missing element":          {del: map[string][]elem{"known_local4": {{key: other}}}},
		"add an element whose key is there": {add: map[string][]elem{"ing_group4": {{key: web, val: "in-0000a002"}}}},
		"jump to a missing chain":           {add: map[string][]elem{"ing_group4": {{key: other, val: "in-0000beef"}}}},
		"add to a missing set":              {add: map[string][]elem{"peer-0000beef-4": {{key: other, end: other}}}},
		"delete a chain still jumped to":    {delChains: []model.GroupKey{inWeb}},
		"delete a missing chain":            {delChains: []model.GroupKey{{Direction: model.Ingress, ID: 0xbeef}}},
		"add a chain that exists":           {addChains: []model.GroupKey{inWeb}},
		"add a set that exists":             {addSets: []string{"peer-0000b001-4"}},
		"delete a set a rule names":         {delSets: []string{"peer-0000b001-4"}},
		"delete a missing set":              {delSets: []string{"peer-0000beef-4"}},
		"delete a fixed set":                {delSets: []string{"known_local4"}},
		"a rule naming a missing set": {rules: []chainRules{{key: inDB, flush: true,
			rules: []model.Rule{{Peer: 0x0000beef, Ports: tcp(1)}}}}},
		"rules added without a flush": {rules: []chainRules{{key: inDB, rules: []model.Rule{{Peer: peerWeb, Ports: tcp(1)}}}}},
		"flush a missing chain":       {rules: []chainRules{{key: model.GroupKey{Direction: model.Egress, ID: 0xbeef}, flush: true}}},
		"overlapping ranges": {add: map[string][]elem{"peer-0000c001-4": {{
			key: string(addr("198.18.0.200").AsSlice()), end: string(addr("198.18.1.5").AsSlice())}}}},
		"an address inside a range": {add: map[string][]elem{"peer-0000c001-4": {{
			key: string(addr("198.18.0.7").AsSlice()), end: string(addr("198.18.0.7").AsSlice())}}}},
		"a range over an address": {add: map[string][]elem{"peer-0000b002-4": {{
			key: string(addr("198.18.140.0").AsSlice()), end: string(addr("198.18.140.255").AsSlice())}}}},
	} {
		bad.add, bad.del = nonNil(bad.add), nonNil(bad.del)
		before := k.elemsDump()
		if err := k.commit(rs, bad); err == nil {
			t.Errorf("%s: committed", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if after := k.elemsDump(); after != before {
			t.Errorf("%s: a failed transaction changed the table:\n%s\nwas\n%s", name, after, before)
		}
	}
	// In the transaction's order, what the kernel allows: the elements
	// jumping to a chain and the rules naming a set go first (the chain
	// flushed in the same transaction), then the chain and the set.
	ok := &tx{
		rules: []chainRules{{key: inDB, flush: true, rules: []model.Rule{{Peer: peerApp, Ports: tcp(1)}}}},
		del: map[string][]elem{
			"ing_group4": {{key: web, val: "in-0000a001"}},
			"ing_group6": {{key: string(addr("2001:db8:80::2").AsSlice()), val: "in-0000a001"}},
		},
		add:       map[string][]elem{},
		delChains: []model.GroupKey{inWeb},
		delSets:   []string{"peer-0000b001-4", "peer-0000b001-6", "peer-0000c001-4", "peer-0000c001-6"},
	}
	if err := k.commit(rs, ok); err != nil {
		t.Fatalf("elements, rules, then chain and sets: %v", err)
	}
}

func nonNil(m map[string][]elem) map[string][]elem {
	if m == nil {
		return map[string][]elem{}
	}
	return m
}

// setNames lists the fake kernel's sets.
func (m *memKernel) setNames() []string { return slices.Sorted(maps.Keys(m.sets)) }

// elemsDump describes the fake kernel, for comparisons.
func (m *memKernel) elemsDump() string {
	var lines []string
	for _, name := range m.setNames() {
		s := m.sets[name]
		var es []string
		for _, e := range s.elems {
			es = append(es, s.spec.render(e))
		}
		slices.Sort(es)
		lines = append(lines, fmt.Sprintf("set %s: %v refs %d", name, es, s.refs))
	}
	for k, c := range m.chains {
		lines = append(lines, fmt.Sprintf("chain %s: %q jumps %d", groupChainName(k), c.fp, c.jumps))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}
