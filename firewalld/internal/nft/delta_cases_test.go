package nft

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

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
