package nft

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

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
