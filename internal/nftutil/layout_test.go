package nftutil

import (
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func TestBaseChainDiff(t *testing.T) {
	accept, drop := nftables.ChainPolicyAccept, nftables.ChainPolicyDrop
	want := &nftables.Chain{
		Name: "postrouting", Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
		Type: nftables.ChainTypeNAT, Policy: &accept,
	}
	same := *want
	same.Policy = nil // read back without a policy: accept
	if why := BaseChainDiff(want, &same); why != "" {
		t.Fatalf("the same chain differs: %s", why)
	}
	for name, change := range map[string]func(c *nftables.Chain){
		"hook":     func(c *nftables.Chain) { c.Hooknum = nftables.ChainHookPrerouting },
		"no hook":  func(c *nftables.Chain) { c.Hooknum = nil },
		"priority": func(c *nftables.Chain) { c.Priority = nftables.ChainPriorityFilter },
		"type":     func(c *nftables.Chain) { c.Type = nftables.ChainTypeFilter },
		"policy":   func(c *nftables.Chain) { c.Policy = &drop },
	} {
		got := *want
		change(&got)
		if BaseChainDiff(want, &got) == "" {
			t.Errorf("%s: no difference", name)
		}
	}
}

func TestRulesDiff(t *testing.T) {
	inet := nftables.TableFamilyINet
	rule := func(comment string, v expr.VerdictKind) *nftables.Rule {
		return &nftables.Rule{UserData: Comment(comment), Exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: v}}}
	}
	want := []*nftables.Rule{rule("a", expr.VerdictAccept), rule("b", expr.VerdictDrop)}
	read := []*nftables.Rule{rule("a", expr.VerdictAccept), rule("b", expr.VerdictDrop)}
	read[0].Exprs[0] = &expr.Counter{Packets: 5, Bytes: 300} // counted meanwhile
	if why := RulesDiff(inet, want, read); why != "" {
		t.Fatalf("the same rules differ: %s", why)
	}
	for name, got := range map[string][]*nftables.Rule{
		"fewer":   want[:1],
		"comment": {rule("a", expr.VerdictAccept), rule("c", expr.VerdictDrop)},
		"verdict": {rule("a", expr.VerdictAccept), rule("b", expr.VerdictAccept)},
		"order":   {want[1], want[0]},
	} {
		if RulesDiff(inet, want, got) == "" {
			t.Errorf("%s: no difference", name)
		}
	}
}
