package nft

import (
	"errors"
	"maps"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// recreateWrites is the size of a transaction creating the table for d:
// three table messages, the sets, the fixed chains and their rules, every
// deny chain with its rules, one message per set that has elements (the
// test Datapaths are small).
func recreateWrites(cfg Config, d *model.Datapath) int {
	log, _ := newLogConfig(cfg)
	rs := newRuleset(log)
	c := encode(d)
	return 3 + len(rs.sets) + len(rs.chains) + rs.fixedRules() + len(c.chains)*(1+rs.denyRuleCount()) + len(c.elems)
}

func TestFirstApplyCreatesThenNothing(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	res := mustApply(t, f, d)
	want := Result{
		Writes: recreateWrites(Config{}, d), Full: true, Recreate: true, Reason: "table missing",
		// local CIDRs 2, known 3, ingress groups 3 + deny 3, egress group 1
		// + deny 1, identities 4, regions 2, allow 3 + 1, any 1.
		ElementsAdded: 2 + 3 + 3 + 3 + 1 + 1 + 4 + 2 + 3 + 1 + 1,
		ChainsAdded:   3, // deny-in-0000a001, deny-in-0000a002, deny-eg-0000a002
	}
	if res != want {
		t.Fatalf("first Apply:\n got %+v\nwant %+v", res, want)
	}
	dump := f.Dump()
	if !dump.Exists || dump.Transactions != 1 || dump.Writes != res.Writes || dump.Last.Writes != res.Writes {
		t.Fatalf("dump %+v", dump)
	}
	wantSets := map[string][]string{
		"local_cidrs4":  {"198.18.128.0/24"},
		"local_cidrs6":  {"2001:db8:80::/64"},
		"known_local4":  {"198.18.128.2", "198.18.128.3"},
		"known_local6":  {"2001:db8:80::2"},
		"ing_group4":    {"198.18.128.2 : 0x0000a001", "198.18.128.3 : 0x0000a002"},
		"ing_group6":    {"2001:db8:80::2 : 0x0000a001"},
		"eg_group4":     {"198.18.128.3 : 0x0000a002"},
		"eg_group6":     {},
		"pod_ident4":    {"198.18.128.2 : 0x0000b001", "198.18.128.3 : 0x0000b002", "198.18.140.7 : 0x0000b002"},
		"pod_ident6":    {"2001:db8:80::2 : 0x0000b001"},
		"region_ident4": {"198.18.0.0/24 : 0x0000c001", "198.18.1.0-198.18.255.255 : 0x0000c002"},
		"region_ident6": {},
		"ing_deny4":     {"198.18.128.2 : jump deny-in-0000a001", "198.18.128.3 : jump deny-in-0000a002"},
		"ing_deny6":     {"2001:db8:80::2 : jump deny-in-0000a001"},
		"eg_deny4":      {"198.18.128.3 : jump deny-eg-0000a002"},
		"eg_deny6":      {},
		"ing_allow": {
			"0x0000a001 . 0x0000b002 . tcp . 8080",
			"0x0000a001 . 0x0000c001 . tcp . 8000-8999",
			"0x0000a002 . 0x0000b001 . tcp . 5432",
		},
		"eg_allow": {"0x0000a002 . 0x0000b002 . 0-255 . 0-65535"},
		"ing_any":  {"0x0000a001 . udp . 53"},
		"eg_any":   {},
	}
	if !reflect.DeepEqual(dump.Sets, wantSets) {
		t.Fatalf("sets:\n got %v\nwant %v", dump.Sets, wantSets)
	}
	if want := []string{"deny-eg-0000a002", "deny-in-0000a001", "deny-in-0000a002"}; !reflect.DeepEqual(dump.Chains, want) {
		t.Fatalf("deny chains %v, want %v", dump.Chains, want)
	}

	// The same Datapath again: nothing at all, not even a read.
	if res := mustApply(t, f, baseDatapath()); res != (Result{}) {
		t.Fatalf("repeated Apply %+v, want nothing", res)
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
}

// deltaCase is one change of the Datapath after baseDatapath and the
// minimal transaction it takes; the kernel tests run the same cases.
type deltaCase struct {
	name   string
	change func(*model.Datapath)
	want   Result
	sets   map[string][]string // sets that must then hold exactly this
	chains []string            // the deny chains then, when not nil
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
			name: "a pod joins an existing group",
			change: func(d *model.Datapath) {
				d.KnownLocal[addr("198.18.128.4")] = struct{}{}
				d.IngressGroup[addr("198.18.128.4")] = groupWeb
			},
			// known_local4, ing_group4, ing_deny4: one message each.
			want: Result{Writes: 3, ElementsAdded: 3},
			sets: map[string][]string{"ing_deny4": {
				"198.18.128.2 : jump deny-in-0000a001", "198.18.128.3 : jump deny-in-0000a002", "198.18.128.4 : jump deny-in-0000a001"}},
		},
		{
			name: "a new group appears",
			change: func(d *model.Datapath) {
				d.EgressGroup[addr("198.18.128.2")] = 0x0000a003
			},
			// The chain and its rule, then eg_group4 and eg_deny4.
			want:   Result{Writes: 2 + 2, ElementsAdded: 2, ChainsAdded: 1},
			sets:   map[string][]string{"eg_deny4": {"198.18.128.2 : jump deny-eg-0000a003", "198.18.128.3 : jump deny-eg-0000a002"}},
			chains: []string{"deny-eg-0000a002", "deny-eg-0000a003", "deny-in-0000a001", "deny-in-0000a002"},
		},
		{
			name: "a group disappears",
			change: func(d *model.Datapath) {
				delete(d.EgressGroup, addr("198.18.128.3"))
			},
			// eg_group4 and eg_deny4 elements, then the chain.
			want:   Result{Writes: 2 + 1, ElementsDeleted: 2, ChainsDeleted: 1},
			sets:   map[string][]string{"eg_group4": {}, "eg_deny4": {}},
			chains: []string{"deny-in-0000a001", "deny-in-0000a002"},
		},
		{
			name: "a pod moves to another group, its old one disappears",
			change: func(d *model.Datapath) {
				d.IngressGroup[addr("198.18.128.3")] = groupWeb
			},
			// Its ing_group4 and ing_deny4 elements are replaced (two
			// deletes, two adds), and deny-in-0000a002 goes.
			want:   Result{Writes: 2 + 1 + 2, ElementsAdded: 2, ElementsDeleted: 2, ChainsDeleted: 1},
			sets:   map[string][]string{"ing_group4": {"198.18.128.2 : 0x0000a001", "198.18.128.3 : 0x0000a001"}},
			chains: []string{"deny-eg-0000a002", "deny-in-0000a001"},
		},
		{
			name: "an allow element comes",
			change: func(d *model.Datapath) {
				d.IngressAllow[model.Allow{Group: groupWeb, Ident: identApp, Ports: tcp(9090)}] = struct{}{}
			},
			want: Result{Writes: 1, ElementsAdded: 1},
		},
		{
			name: "a rule without peers goes",
			change: func(d *model.Datapath) {
				clear(d.IngressAny)
			},
			want: Result{Writes: 1, ElementsDeleted: 1},
			sets: map[string][]string{"ing_any": {}},
		},
		{
			name: "a remote pod's identity changes",
			change: func(d *model.Datapath) {
				d.PodIdent[addr("198.18.140.7")] = identWeb
			},
			want: Result{Writes: 2, ElementsAdded: 1, ElementsDeleted: 1},
			sets: map[string][]string{"pod_ident4": {"198.18.128.2 : 0x0000b001", "198.18.128.3 : 0x0000b002", "198.18.140.7 : 0x0000b001"}},
		},
		{
			name: "regions are split",
			change: func(d *model.Datapath) {
				d.Regions = []model.Region{
					{From: addr("198.18.0.0"), To: addr("198.18.0.127"), Ident: identNet},
					{From: addr("198.18.0.128"), To: addr("198.18.0.255"), Ident: identRest},
					{From: addr("198.18.1.0"), To: addr("198.18.255.255"), Ident: identRest},
				}
			},
			want: Result{Writes: 2, ElementsAdded: 2, ElementsDeleted: 1},
			sets: map[string][]string{"region_ident4": {
				"198.18.0.0/25 : 0x0000c001", "198.18.0.128/25 : 0x0000c002", "198.18.1.0-198.18.255.255 : 0x0000c002"}},
		},
		{
			name: "a pod CIDR grows",
			change: func(d *model.Datapath) {
				d.LocalCIDRs[0] = netip.MustParsePrefix("198.18.128.0/23")
			},
			want: Result{Writes: 2, ElementsAdded: 1, ElementsDeleted: 1},
			sets: map[string][]string{"local_cidrs4": {"198.18.128.0/23"}},
		},
	}
}

func TestDeltas(t *testing.T) {
	for _, tc := range deltaCases() {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake(Config{})
			mustApply(t, f, baseDatapath())
			d := baseDatapath()
			tc.change(d)
			if res := mustApply(t, f, d); res != tc.want {
				t.Fatalf("Apply:\n got %+v\nwant %+v", res, tc.want)
			}
			dump := f.Dump()
			for set, want := range tc.sets {
				if got := dump.Sets[set]; !reflect.DeepEqual(got, want) {
					t.Errorf("set %s: %v, want %v", set, got, want)
				}
			}
			if tc.chains != nil && !reflect.DeepEqual(dump.Chains, tc.chains) {
				t.Errorf("deny chains %v, want %v", dump.Chains, tc.chains)
			}
			// What the fake kernel holds is what a fresh table would.
			fresh := NewFake(Config{})
			mustApply(t, fresh, d)
			if !reflect.DeepEqual(fresh.Dump().Sets, dump.Sets) || !reflect.DeepEqual(fresh.Dump().Chains, dump.Chains) {
				t.Errorf("after the delta the table is\n%v %v\na fresh table has\n%v %v", dump.Sets, dump.Chains, fresh.Dump().Sets, fresh.Dump().Chains)
			}
			if res := mustApply(t, f, d); res != (Result{}) {
				t.Fatalf("repeated Apply %+v, want nothing", res)
			}
			// And back: the delta in the other direction undoes it.
			if _, err := f.Apply(baseDatapath()); err != nil {
				t.Fatalf("back to the base: %v", err)
			}
			fresh = NewFake(Config{})
			mustApply(t, fresh, baseDatapath())
			if !reflect.DeepEqual(fresh.Dump().Sets, f.Dump().Sets) || !reflect.DeepEqual(fresh.Dump().Chains, f.Dump().Chains) {
				t.Errorf("back to the base the table is\n%v\nwant\n%v", f.Dump().Sets, fresh.Dump().Sets)
			}
		})
	}
}

func TestFailedTransactionMakesTheNextApplyFull(t *testing.T) {
	f := NewFake(Config{})
	mustApply(t, f, baseDatapath())
	d := baseDatapath()
	d.KnownLocal[addr("198.18.128.4")] = struct{}{}

	f.FailNext(errors.New("ENOBUFS"))
	if _, err := f.Apply(d); err == nil || !strings.Contains(err.Error(), "ENOBUFS") {
		t.Fatalf("Apply with a failing transaction: %v", err)
	}
	if got := f.Dump().Sets["known_local4"]; len(got) != 2 {
		t.Fatalf("a failed transaction changed the kernel: %v", got)
	}
	// The next Apply reads the kernel and writes the one element again.
	if res := mustApply(t, f, d); res != (Result{Writes: 1, Full: true, ElementsAdded: 1}) {
		t.Fatalf("Apply after the error %+v", res)
	}
}

func TestFullApplyRepairsDrift(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)

	// Someone adds an element and deletes another behind firewalld's back.
	f.k.sets["known_local4"][elemID{key: string(addr("198.18.128.99").AsSlice())}] = elem{key: string(addr("198.18.128.99").AsSlice())}
	delete(f.k.sets["pod_ident4"], elemID{key: string(addr("198.18.140.7").AsSlice())})

	// A partial Apply trusts its cache: nothing to do.
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("partial Apply %+v", res)
	}
	f.Invalidate()
	if res := mustApply(t, f, d); res != (Result{Writes: 2, Full: true, ElementsAdded: 1, ElementsDeleted: 1}) {
		t.Fatalf("full Apply %+v, want the two elements repaired", res)
	}
	fresh := NewFake(Config{})
	mustApply(t, fresh, d)
	if !reflect.DeepEqual(fresh.Dump().Sets, f.Dump().Sets) {
		t.Fatalf("after repair\n%v\nwant\n%v", f.Dump().Sets, fresh.Dump().Sets)
	}
}

func TestTamperedStaticPartIsRecreated(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)
	f.Tamper("chain pods: 7 rules, want 6")
	f.Invalidate()
	res := mustApply(t, f, d)
	if !res.Recreate || res.Reason != "chain pods: 7 rules, want 6" || res.Writes != recreateWrites(Config{}, d) || res.ChainsAdded != 3 {
		t.Fatalf("Apply after tampering %+v, want the table recreated", res)
	}
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("then %+v", res)
	}
}

func TestLogSettingsArePartOfTheLayout(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)
	logging := Config{LogGroup: 7, LogRate: 5, LogBurst: 20}
	res := mustApply(t, f.Restarted(logging), d)
	if !res.Recreate || !strings.Contains(res.Reason, "rules differ") || res.Writes != recreateWrites(logging, d) {
		t.Fatalf("restart with logging %+v, want the table recreated", res)
	}
	// A burst of 0 is the kernel's default, 5: written as 5, the same
	// layout as an explicit 5.
	defaulted := Config{LogGroup: 7, LogRate: 5}
	g := NewFake(defaulted)
	mustApply(t, g, d)
	if res := mustApply(t, g.Restarted(Config{LogGroup: 7, LogRate: 5, LogBurst: 5}), d); res != (Result{Full: true}) {
		t.Fatalf("burst 0 and 5 differ: %+v", res)
	}
	// Without deny chains the log settings are nowhere in the table.
	e := NewFake(Config{})
	mustApply(t, e, model.NewDatapath())
	if res := mustApply(t, e.Restarted(logging), model.NewDatapath()); res != (Result{Full: true}) {
		t.Fatalf("log settings changed without deny chains: %+v", res)
	}
}

func TestBadConfig(t *testing.T) {
	f := NewFake(Config{LogGroup: 2})
	if _, err := f.Apply(baseDatapath()); err == nil || !strings.Contains(err.Error(), "log rate") {
		t.Fatalf("Apply with a log group and no rate: %v", err)
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
	// The next Apply knows the table is gone.
	if res := mustApply(t, f, d); !res.Recreate || !res.Full {
		t.Fatalf("Apply after Delete %+v, want the table created", res)
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
}

func TestBadInputIsLeftOut(t *testing.T) {
	d := baseDatapath()
	// An IPv4-mapped address would collide with its IPv4 one; a zoned or
	// invalid address is no pod's.
	d.KnownLocal[addr("::ffff:198.18.128.2")] = struct{}{}
	d.KnownLocal[netip.Addr{}] = struct{}{}
	d.IngressGroup[addr("::ffff:198.18.128.2")] = 0x0000dead // no deny chain for it either
	d.PodIdent[addr("fe80::1%eth0")] = identWeb
	d.LocalCIDRs = append(d.LocalCIDRs, netip.Prefix{}, netip.MustParsePrefix("198.18.128.128/25")) // invalid; inside the /24
	d.Regions = append(d.Regions,
		model.Region{From: addr("198.18.0.10"), To: addr("198.18.0.20"), Ident: 0x0000dead}, // overlaps 198.18.0.0/24
		model.Region{From: addr("198.18.0.30"), To: addr("198.18.0.20"), Ident: 0x0000dead}, // empty
		model.Region{From: addr("198.18.0.30"), To: addr("2001:db8::1"), Ident: 0x0000dead}) // two families
	d.IngressAllow[model.Allow{Group: groupWeb, Ident: identApp, Ports: model.PortRange{ProtoFrom: 17, ProtoTo: 6, PortFrom: 1, PortTo: 2}}] = struct{}{}
	d.IngressAny[model.AnyAllow{Group: groupWeb, Ports: model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: 90, PortTo: 80}}] = struct{}{}

	f := NewFake(Config{})
	mustApply(t, f, d)
	fresh := NewFake(Config{})
	mustApply(t, fresh, baseDatapath())
	if !reflect.DeepEqual(f.Dump().Sets, fresh.Dump().Sets) || !reflect.DeepEqual(f.Dump().Chains, fresh.Dump().Chains) {
		t.Fatalf("bad input reached the table:\n%v %v\nwant\n%v %v", f.Dump().Sets, f.Dump().Chains, fresh.Dump().Sets, fresh.Dump().Chains)
	}
	// The delta path leaves out the same.
	g := NewFake(Config{})
	mustApply(t, g, baseDatapath())
	mustApply(t, g, d)
	if !reflect.DeepEqual(g.Dump().Sets, fresh.Dump().Sets) || !reflect.DeepEqual(g.Dump().Chains, fresh.Dump().Chains) {
		t.Fatalf("bad input reached the table through a delta:\n%v %v", g.Dump().Sets, g.Dump().Chains)
	}
}

func TestFakeCounters(t *testing.T) {
	f := NewFake(Config{})
	c, err := f.Counters()
	if err != nil || len(c.Denied) != 0 || c.Pending != (Counter{}) {
		t.Fatalf("counters without a table: %+v, %v", c, err)
	}
	mustApply(t, f, baseDatapath())
	if !f.Drop(model.Ingress, groupWeb, 3, 180) || !f.DropPending(1, 60) {
		t.Fatal("drops not counted")
	}
	if f.Drop(model.Egress, groupWeb, 1, 1) {
		t.Fatal("a drop counted by a deny chain that does not exist")
	}
	c, err = f.Counters()
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{
		Denied: map[GroupKey]Counter{
			{model.Ingress, groupWeb}: {3, 180},
			{model.Ingress, groupDB}:  {},
			{model.Egress, groupDB}:   {},
		},
		Pending: Counter{1, 60},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("counters %+v, want %+v", c, want)
	}
	// A group that goes takes its counter with it.
	d := baseDatapath()
	maps.DeleteFunc(d.IngressGroup, func(_ netip.Addr, g model.ID) bool { return g == groupWeb })
	mustApply(t, f, d)
	c, _ = f.Counters()
	if _, ok := c.Denied[GroupKey{model.Ingress, groupWeb}]; ok || c.Pending != (Counter{1, 60}) {
		t.Fatalf("counters after the group went: %+v", c)
	}
}

func TestFakeRejectsWhatTheKernelRejects(t *testing.T) {
	rs := newRuleset(logConfig{})
	k := &memKernel{}
	if err := k.commit(rs, plan(rs, nil, encode(baseDatapath()), "table missing")); err != nil {
		t.Fatal(err)
	}
	web := string(addr("198.18.128.2").AsSlice())
	for name, bad := range map[string]*tx{
		"delete a missing element":          {del: map[string][]elem{"known_local4": {{key: string(addr("198.18.128.9").AsSlice())}}}},
		"add an element whose key is there": {add: map[string][]elem{"ing_group4": {{key: web, val: string(mark(groupDB))}}}},
		"jump to a missing chain":           {add: map[string][]elem{"ing_deny4": {{key: string(addr("198.18.128.9").AsSlice()), val: "deny-in-0000beef"}}}},
		"delete a chain still jumped to":    {delChains: []string{"deny-in-0000a001"}},
		"delete a missing chain":            {delChains: []string{"deny-in-0000beef"}},
		"add a chain that exists":           {addChains: []string{"deny-in-0000a001"}},
		"overlapping regions": {add: map[string][]elem{"region_ident4": {{
			key: string(addr("198.18.0.200").AsSlice()), end: string(addr("198.18.1.5").AsSlice()), val: string(mark(identNet))}}}},
	} {
		before := k.elems()
		if err := k.commit(rs, bad); err == nil {
			t.Errorf("%s: committed", name)
		}
		if !reflect.DeepEqual(k.elems(), before) {
			t.Errorf("%s: a failed transaction changed the table", name)
		}
	}
	// Deleting the elements first makes the chain deletable, in the same
	// transaction.
	ok := &tx{
		del: map[string][]elem{
			"ing_group4": {{key: web, val: string(mark(groupWeb))}},
			"ing_deny4":  {{key: web, val: "deny-in-0000a001"}},
			"ing_group6": {{key: string(addr("2001:db8:80::2").AsSlice()), val: string(mark(groupWeb))}},
			"ing_deny6":  {{key: string(addr("2001:db8:80::2").AsSlice()), val: "deny-in-0000a001"}},
		},
		delChains: []string{"deny-in-0000a001"},
	}
	if err := k.commit(rs, ok); err != nil {
		t.Fatalf("elements then chain: %v", err)
	}
}
