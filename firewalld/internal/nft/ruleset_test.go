package nft

import (
	"maps"
	"reflect"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/nftutil"
	"golang.org/x/sys/unix"
)

func TestGroupChainNames(t *testing.T) {
	for _, tc := range []struct {
		key  model.GroupKey
		name string
	}{
		{model.GroupKey{Direction: model.Ingress, ID: 0x0000a001}, "in-0000a001"},
		{model.GroupKey{Direction: model.Egress, ID: 0xffffffff}, "out-ffffffff"},
		{model.GroupKey{Direction: model.Ingress, ID: 0}, "in-00000000"},
	} {
		if got := groupChainName(tc.key); got != tc.name {
			t.Errorf("groupChainName(%v) = %q, want %q", tc.key, got, tc.name)
		}
		if k, ok := parseGroupChain(tc.name); !ok || k != tc.key {
			t.Errorf("parseGroupChain(%q) = %v, %v", tc.name, k, ok)
		}
	}
	for _, bad := range []string{"in-0000A001", "eg-0000a001", "in-a001", "in-0000a0011", "pods", "in-0000a00g", "in_0000a001",
		"deny-in-0000a001", "out-0000a001 ", "egress", "ingress"} {
		if _, ok := parseGroupChain(bad); ok {
			t.Errorf("parseGroupChain(%q) accepted", bad)
		}
	}
}

func TestPeerSetNames(t *testing.T) {
	if got := peerSetName(0x0000b001, false); got != "peer-0000b001-4" {
		t.Fatalf("peerSetName = %q", got)
	}
	for _, v6 := range []bool{false, true} {
		if id, six, ok := parsePeerSet(peerSetName(0xdeadbeef, v6)); !ok || id != 0xdeadbeef || six != v6 {
			t.Fatalf("parsePeerSet(%q) = %v %v %v", peerSetName(0xdeadbeef, v6), id, six, ok)
		}
	}
	for _, bad := range []string{"peer-0000b001-5", "peer-0000B001-4", "peer-b001-4", "peer-0000b001_4", "known_local4", "pod_ident4", "peer-0000b001-44"} {
		if _, _, ok := parsePeerSet(bad); ok {
			t.Errorf("parsePeerSet(%q) accepted", bad)
		}
	}
}

func TestRulesMarshal(t *testing.T) {
	rs := newRuleset(logConfig{group: 3, rate: 10, burst: 5})
	rules := 0
	for _, c := range rs.chains {
		for _, r := range c.rules {
			rules++
			for _, e := range r.exprs {
				if _, err := nftutil.MarshalExpr(nftables.TableFamilyINet, e); err != nil {
					t.Errorf("chain %s, rule %q: %v", c.name, r.comment, err)
				}
			}
		}
	}
	// pods: 4 pending, 4 jumps; forward 2; output 3.
	if len(rs.sets) != 8 || len(rs.chains) != 3 || rules != 8+2+3 {
		t.Fatalf("%d sets, %d chains, %d rules", len(rs.sets), len(rs.chains), rules)
	}
	d := baseDatapath()
	for k, rules := range d.Chains {
		specs := rs.groupRules(k, rules)
		if len(specs) != rs.groupRuleCount(rules) {
			t.Errorf("%v: %d rules, groupRuleCount %d", k, len(specs), rs.groupRuleCount(rules))
		}
		for _, r := range specs {
			for _, e := range r.exprs {
				if _, err := nftutil.MarshalExpr(nftables.TableFamilyINet, e); err != nil {
					t.Errorf("%v: %v", k, err)
				}
			}
		}
	}
	if n := newRuleset(logConfig{}).groupRuleCount(nil); n != 1 {
		t.Fatalf("%d rules in a chain without rules or logging, want the drop alone", n)
	}
}

// The group chains' rules are what nft writes for the same text (compare
// "nft --debug=netlink add rule ..."): nft lists them back as such.
func TestGroupRuleExprs(t *testing.T) {
	rs := newRuleset(logConfig{group: 3, rate: 10, burst: 5})
	k := model.GroupKey{Direction: model.Ingress, ID: 0x0000a001}
	rules := rs.groupRules(k, []model.Rule{
		{Peer: peerApp, Ports: tcp(80)},
		{Peer: model.AnyPeer, Ports: model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: 9000, PortTo: 9100}},
		{Peer: model.AnyPeer, Ports: model.AllTraffic},
	})
	reg := uint32(unix.NFT_REG_1)
	want := [][]expr.Any{
		{ // meta nfproto ipv4 ip saddr @peer-0000b002-4 meta l4proto tcp th dport 80 return
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{unix.NFPROTO_IPV4}},
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
			&expr.Lookup{SourceRegister: reg, SetName: "peer-0000b002-4"},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{6}},
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{0, 80}},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
		{ // meta nfproto ipv6 ip6 saddr @peer-0000b002-6 ...
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{unix.NFPROTO_IPV6}},
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16},
			&expr.Lookup{SourceRegister: reg, SetName: "peer-0000b002-6"},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{6}},
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{0, 80}},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
		{ // meta l4proto tcp th dport 9000-9100 return
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{6}},
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpGte, Register: reg, Data: []byte{0x23, 0x28}},
			&expr.Cmp{Op: expr.CmpOpLte, Register: reg, Data: []byte{0x23, 0x8c}},
			&expr.Verdict{Kind: expr.VerdictReturn},
		},
		{&expr.Verdict{Kind: expr.VerdictReturn}}, // return
		{ // limit rate 10/second log prefix "nodenet deny in 0000a001 " group 3
			&expr.Limit{Type: expr.LimitTypePkts, Rate: 10, Unit: expr.LimitTimeSecond, Burst: 5},
			&expr.Log{Key: 1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX, Group: 3, Data: []byte("nodenet deny in 0000a001 ")},
		},
		{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}, // counter drop
	}
	if len(rules) != len(want) {
		t.Fatalf("%d rules, want %d", len(rules), len(want))
	}
	for i := range want {
		if rules[i].comment != "" || !reflect.DeepEqual(rules[i].exprs, want[i]) {
			t.Errorf("rule %d:\n got %#v\nwant %#v", i+1, rules[i].exprs, want[i])
		}
	}
	// Egress matches the destination.
	out := rs.groupRules(model.GroupKey{Direction: model.Egress, ID: 1}, []model.Rule{{Peer: peerApp, Ports: model.AllTraffic}})
	if p := out[0].exprs[2].(*expr.Payload); p.Offset != 16 {
		t.Fatalf("egress loads offset %d, want the destination (16)", p.Offset)
	}
}

// asReadTable is the table as the kernel would return it for rs with the
// given group chains (their rules rules) and peer sets (and as
// google/nftables decodes it: a verdict map's data type lands in KeyType,
// counters have counted).
func asReadTable(rs *ruleset, chains map[model.GroupKey][]model.Rule, peers ...model.ID) kernelTable {
	tbl := table()
	kt := kernelTable{table: tbl, rules: map[string][]*nftables.Rule{}}
	accept := nftables.ChainPolicyAccept
	addRules := func(name string, rules []ruleSpec) {
		for _, r := range rules {
			var exprs []expr.Any
			for _, e := range r.exprs {
				switch x := e.(type) {
				case *expr.Counter:
					e = &expr.Counter{Packets: 7, Bytes: 420}
				case *expr.Lookup:
					c := *x
					c.SetID = 0
					e = &c
				}
				exprs = append(exprs, e)
			}
			kt.rules[name] = append(kt.rules[name], &nftables.Rule{Exprs: exprs, UserData: r.userData()})
		}
	}
	for _, c := range rs.chains {
		ch := &nftables.Chain{Name: c.name, Table: tbl}
		if c.hook != nil {
			ch.Hooknum, ch.Priority, ch.Type, ch.Policy = c.hook, nftables.ChainPriorityRef(c.priority), nftables.ChainTypeFilter, &accept
		}
		kt.chains = append(kt.chains, ch)
		addRules(c.name, c.rules)
	}
	for _, k := range slices.SortedFunc(maps.Keys(chains), compareKeys) {
		kt.chains = append(kt.chains, &nftables.Chain{Name: groupChainName(k), Table: tbl})
		addRules(groupChainName(k), rs.groupRules(k, chains[k]))
	}
	specs := rs.sets
	for _, p := range peers {
		specs = append(specs, peerSetSpec(peerSetName(p, false), false), peerSetSpec(peerSetName(p, true), true))
	}
	for _, s := range specs {
		set := s.nftSet(tbl, 0)
		if s.verdicts {
			set.KeyType, set.DataType = nftables.TypeVerdict, nftables.SetDatatype{Bytes: 16}
		}
		kt.sets = append(kt.sets, set)
	}
	return kt
}

func TestStaticDiff(t *testing.T) {
	rs := newRuleset(logConfig{})
	chains := baseDatapath().Chains
	why, c := staticDiff(rs, asReadTable(rs, chains, peerWeb, peerApp))
	if why != "" {
		t.Fatalf("the table as written reads back as different: %q", why)
	}
	wantSets := map[string]struct{}{"peer-0000b001-4": {}, "peer-0000b001-6": {}, "peer-0000b002-4": {}, "peer-0000b002-6": {}}
	if !reflect.DeepEqual(c.sets, wantSets) || len(c.chains) != 3 {
		t.Fatalf("read peer sets %v, %d chains", c.sets, len(c.chains))
	}
	for k, rules := range chains {
		if c.chains[k] != rs.fingerprint(k, rules) {
			t.Errorf("chain %s reads back with other rules", groupChainName(k))
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*kernelTable)
		why    string
	}{
		{"owner flag", func(k *kernelTable) { k.table = &nftables.Table{Name: TableName, Flags: 2} }, "table flags 0x2"},
		{"a foreign chain", func(k *kernelTable) {
			k.chains = append(k.chains, &nftables.Chain{Name: "sneaky", Table: k.table})
		}, "chain sneaky is not firewalld's"},
		{"a chain of the previous layout", func(k *kernelTable) {
			k.chains = append(k.chains, &nftables.Chain{Name: "deny-in-0000a001", Table: k.table})
		}, "chain deny-in-0000a001 is not firewalld's"},
		{"a fixed chain missing", func(k *kernelTable) { k.chains = k.chains[1:] }, "chain pods missing"},
		{"a base chain's priority", func(k *kernelTable) {
			k.chains[1].Priority = nftables.ChainPriorityRef(-10)
		}, "chain forward: priority differs"},
		{"a regular chain hooked", func(k *kernelTable) { k.chains[0].Hooknum = nftables.ChainHookInput }, "chain pods: is a base chain"},
		{"a group chain hooked", func(k *kernelTable) { k.chains[3].Hooknum = nftables.ChainHookInput }, "chain in-0000a001 is a base chain"},
		{"a rule added", func(k *kernelTable) {
			k.rules["pods"] = append(k.rules["pods"], &nftables.Rule{Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
		}, "chain pods: 9 rules, want 8"},
		{"a rule changed", func(k *kernelTable) {
			k.rules["pods"][4].Exprs = k.rules["pods"][4].Exprs[:3]
		}, "chain pods: rule 5 (egress of isolated pods: their group's chain (IPv4)) differs"},
		{"a set of the previous layout", func(k *kernelTable) {
			k.sets = append(k.sets, &nftables.Set{Name: "pod_ident4", KeyType: nftables.TypeIPAddr})
		}, "set pod_ident4 is not firewalld's"},
		{"a fixed set missing", func(k *kernelTable) { k.sets = k.sets[1:] }, "set local_cidrs4 missing"},
		{"a set's key", func(k *kernelTable) {
			k.sets[1] = &nftables.Set{Name: "known_local4", KeyType: nftables.TypeIP6Addr}
		}, "set known_local4: key type ipv6_addr (16 bytes), want ipv4_addr (4 bytes)"},
		{"a peer set's key", func(k *kernelTable) {
			k.sets[8] = &nftables.Set{Name: k.sets[8].Name, Interval: true, KeyType: nftables.TypeIP6Addr}
		}, "set peer-0000b001-4: key type ipv6_addr (16 bytes), want ipv4_addr (4 bytes)"},
		{"a peer set without intervals", func(k *kernelTable) {
			s := *k.sets[9]
			s.Interval = false
			k.sets[9] = &s
		}, "set peer-0000b001-6: map or interval flag differs"},
		{"a vmap that is not", func(k *kernelTable) {
			s := *k.sets[2]
			s.KeyType = nftables.TypeIPAddr
			k.sets[2] = &s
		}, "set ing_group4: data type is not verdict (key type read as ipv4_addr)"},
		{"a map of the previous layout (marks)", func(k *kernelTable) {
			s := *k.sets[2]
			s.KeyType, s.DataType = nftables.TypeIPAddr, nftables.TypeMark
			k.sets[2] = &s
		}, "set ing_group4: data type is not verdict (key type read as ipv4_addr)"},
		{"an interval flag", func(k *kernelTable) {
			s := *k.sets[0]
			s.Interval = false
			k.sets[0] = &s
		}, "set local_cidrs4: map or interval flag differs"},
	} {
		kt := asReadTable(rs, chains, peerWeb, peerApp)
		tc.change(&kt)
		if why, _ := staticDiff(rs, kt); why != tc.why {
			t.Errorf("%s: %q, want %q", tc.name, why, tc.why)
		}
	}
}

func TestGroupChainRulesAreNotStatic(t *testing.T) {
	// Other rules in a group chain (another version's, other log
	// settings, someone's edit) rewrite the chain, not the table.
	rs := newRuleset(logConfig{})
	chains := baseDatapath().Chains
	logged := asReadTable(newRuleset(logConfig{group: 4, rate: 10, burst: 5}), chains, peerWeb, peerApp)
	why, c := staticDiff(rs, logged)
	if why != "" {
		t.Fatalf("other log settings: %q", why)
	}
	for k, rules := range chains {
		if c.chains[k] == rs.fingerprint(k, rules) {
			t.Errorf("chain %s with log rules reads as without", groupChainName(k))
		}
		if c.chains[k] != newRuleset(logConfig{group: 4, rate: 10, burst: 5}).fingerprint(k, rules) {
			t.Errorf("chain %s does not read as written", groupChainName(k))
		}
	}
	other := newRuleset(logConfig{group: 4, rate: 20, burst: 5})
	if other.fingerprint(inDB, chains[inDB]) == newRuleset(logConfig{group: 4, rate: 10, burst: 5}).fingerprint(inDB, chains[inDB]) {
		t.Fatal("the log rate is not in the fingerprint")
	}
	if rs.fingerprint(inDB, chains[inDB]) == rs.fingerprint(inDB, []model.Rule{{Peer: peerWeb, Ports: tcp(5433)}}) {
		t.Fatal("the port is not in the fingerprint")
	}
	if rs.fingerprint(inDB, nil) == rs.fingerprintEmpty() {
		t.Fatal("a chain with its drop reads as an empty one")
	}
}
