package nft

import (
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/nftutil"
)

func TestDenyChainNames(t *testing.T) {
	for _, tc := range []struct {
		dir  model.Direction
		id   model.ID
		name string
	}{
		{model.Ingress, 0x0000a001, "deny-in-0000a001"},
		{model.Egress, 0xffffffff, "deny-eg-ffffffff"},
		{model.Ingress, 0, "deny-in-00000000"},
	} {
		if got := denyChainName(tc.dir, tc.id); got != tc.name {
			t.Errorf("denyChainName(%v, %v) = %q, want %q", tc.dir, tc.id, got, tc.name)
		}
		dir, id, ok := parseDenyChain(tc.name)
		if !ok || dir != tc.dir || id != tc.id {
			t.Errorf("parseDenyChain(%q) = %v, %v, %v", tc.name, dir, id, ok)
		}
	}
	for _, bad := range []string{"deny-in-0000A001", "deny-xx-0000a001", "deny-in-a001", "deny-in-0000a0011", "pods", "deny-in-0000a00g", "deny_in-0000a001"} {
		if _, _, ok := parseDenyChain(bad); ok {
			t.Errorf("parseDenyChain(%q) accepted", bad)
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
	// forward 2, output 3, pods 6, egress and ingress 4 per family.
	if len(rs.sets) != 20 || len(rs.chains) != 5 || rules != 2+3+6+8+8 {
		t.Fatalf("%d sets, %d chains, %d rules", len(rs.sets), len(rs.chains), rules)
	}
	if n := rs.denyRuleCount(); n != 2 {
		t.Fatalf("%d rules per deny chain with logging, want 2", n)
	}
	if n := newRuleset(logConfig{}).denyRuleCount(); n != 1 {
		t.Fatalf("%d rules per deny chain without logging, want 1", n)
	}
	log := rs.denyRules(model.Egress, 0x0000a001)[0].exprs[2].(*expr.Log)
	if string(log.Data) != "nodenet deny eg 0000a001 " || log.Group != 3 {
		t.Fatalf("log %+v", log)
	}
}

// asRead is the table as the kernel would return it for rs with the given
// deny chains (and as google/nftables decodes it: a verdict map's data
// type lands in KeyType, counters have counted).
func asRead(rs *ruleset, deny ...string) kernelTable {
	tbl := table()
	kt := kernelTable{table: tbl, rules: map[string][]*nftables.Rule{}}
	accept := nftables.ChainPolicyAccept
	addRules := func(name string, rules []ruleSpec) {
		for _, r := range rules {
			var exprs []expr.Any
			for _, e := range r.exprs {
				if _, ok := e.(*expr.Counter); ok {
					e = &expr.Counter{Packets: 7, Bytes: 420}
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
	for _, name := range deny {
		kt.chains = append(kt.chains, &nftables.Chain{Name: name, Table: tbl})
		dir, id, _ := parseDenyChain(name)
		addRules(name, rs.denyRules(dir, id))
	}
	for _, s := range rs.sets {
		set := s.nftSet(tbl, 0)
		if s.data == verdictData {
			set.KeyType, set.DataType = nftables.TypeVerdict, nftables.SetDatatype{Bytes: 16}
		}
		kt.sets = append(kt.sets, set)
	}
	return kt
}

func TestStaticDiff(t *testing.T) {
	rs := newRuleset(logConfig{})
	why, deny := staticDiff(rs, asRead(rs, "deny-in-0000a001", "deny-eg-0000a002"))
	if why != "" || len(deny) != 2 {
		t.Fatalf("the table as written reads back as different (%q) or with deny chains %v", why, deny)
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
		{"a fixed chain missing", func(k *kernelTable) { k.chains = k.chains[1:] }, "chain egress missing"},
		{"a base chain's priority", func(k *kernelTable) {
			k.chains[3].Priority = nftables.ChainPriorityRef(-10)
		}, "chain forward: priority differs"},
		{"a regular chain hooked", func(k *kernelTable) { k.chains[2].Hooknum = nftables.ChainHookInput }, "chain pods: is a base chain"},
		{"a rule added", func(k *kernelTable) {
			k.rules["pods"] = append(k.rules["pods"], &nftables.Rule{Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
		}, "chain pods: 7 rules, want 6"},
		{"a rule changed", func(k *kernelTable) {
			k.rules["egress"][3].Exprs = k.rules["egress"][3].Exprs[:3]
		}, "chain egress: rule 4 (egress denied: to the group's deny chain (IPv4)) differs"},
		{"a deny chain logs", func(k *kernelTable) {
			k.rules["deny-in-0000a001"][0].Exprs = newRuleset(logConfig{group: 1, rate: 1, burst: 5}).denyRules(model.Ingress, 0x0000a001)[0].exprs
		}, "chain deny-in-0000a001: rule 1 (deny ingress group 0000a001) differs"},
		{"a set more", func(k *kernelTable) {
			k.sets = append(k.sets, &nftables.Set{Name: "extra", KeyType: nftables.TypeIPAddr})
		}, "21 sets, want 20"},
		{"a set's key", func(k *kernelTable) {
			k.sets[1] = &nftables.Set{Name: "known_local4", KeyType: nftables.TypeIP6Addr}
		}, "set known_local4: key type ipv6_addr (16 bytes), want ipv4_addr (4 bytes)"},
		{"a map's data", func(k *kernelTable) {
			s := *k.sets[2]
			s.DataType = nftables.TypeInteger
			k.sets[2] = &s
		}, "set ing_group4: data type integer (4 bytes), want mark"},
		{"a vmap that is not", func(k *kernelTable) {
			s := *k.sets[6]
			s.KeyType = nftables.TypeIPAddr
			k.sets[6] = &s
		}, "set ing_deny4: data type is not verdict (key type read as ipv4_addr)"},
		{"an interval flag", func(k *kernelTable) {
			s := *k.sets[0]
			s.Interval = false
			k.sets[0] = &s
		}, "set local_cidrs4: map, interval or concatenation flag differs"},
	} {
		kt := asRead(rs, "deny-in-0000a001")
		tc.change(&kt)
		if why, _ := staticDiff(rs, kt); why != tc.why {
			t.Errorf("%s: %q, want %q", tc.name, why, tc.why)
		}
	}
}

func TestStaticDiffOfLogSettings(t *testing.T) {
	logging := newRuleset(logConfig{group: 4, rate: 10, burst: 5})
	kt := asRead(newRuleset(logConfig{}), "deny-in-0000a001")
	if why, _ := staticDiff(logging, kt); !strings.HasPrefix(why, "chain deny-in-0000a001: 1 rules, want 2") {
		t.Fatalf("log settings changed: %q", why)
	}
	other := asRead(newRuleset(logConfig{group: 4, rate: 20, burst: 5}), "deny-in-0000a001")
	if why, _ := staticDiff(logging, other); !strings.Contains(why, "rule 1 (count and log ingress group 0000a001) differs") {
		t.Fatalf("log rate changed: %q", why)
	}
}
