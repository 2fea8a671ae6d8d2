package nft

import (
	"bytes"
	"fmt"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// staticDiff says how the table read from the kernel differs from rs in
// its static part (table flags, chains, rules, set definitions), or ""
// when it does not. Any difference makes proxyd recreate the table.
//
// Rules compare by their expressions marshalled again
// (nftutil.SameExprs): what the kernel dumps decodes into the same values
// proxyd wrote, except a lookup's set id, which exists only inside a
// transaction. google/nftables skips expressions it does not know when
// decoding; a rule changed only by such an expression would go unnoticed.
func staticDiff(rs *ruleset, tbl *nftables.Table, chains []*nftables.Chain, rules map[string][]*nftables.Rule, sets []*nftables.Set) string {
	if tbl.Flags != 0 {
		return fmt.Sprintf("table flags %#x", tbl.Flags)
	}
	if len(chains) != len(rs.chains) {
		return fmt.Sprintf("%d chains, want %d", len(chains), len(rs.chains))
	}
	for _, want := range rs.chains {
		var got *nftables.Chain
		for _, c := range chains {
			if c.Name == want.name {
				got = c
			}
		}
		if got == nil {
			return "chain " + want.name + " missing"
		}
		if why := chainDiff(want, got); why != "" {
			return "chain " + want.name + ": " + why
		}
		if why := rulesDiff(want.rules, rules[want.name]); why != "" {
			return "chain " + want.name + ": " + why
		}
	}
	if len(sets) != len(rs.sets) {
		return fmt.Sprintf("%d sets, want %d", len(sets), len(rs.sets))
	}
	for _, want := range rs.sets {
		var got *nftables.Set
		for _, s := range sets {
			if s.Name == want.name {
				got = s
			}
		}
		if got == nil {
			return "set " + want.name + " missing"
		}
		if why := setDiff(want, got); why != "" {
			return "set " + want.name + ": " + why
		}
	}
	return ""
}

func chainDiff(want chainSpec, got *nftables.Chain) string {
	switch {
	case got.Hooknum == nil || *got.Hooknum != want.hook:
		return "hook differs"
	case got.Priority == nil || *got.Priority != want.priority:
		return "priority differs"
	case got.Type != want.typ:
		return fmt.Sprintf("type %q, want %q", got.Type, want.typ)
	case got.Policy != nil && *got.Policy != nftables.ChainPolicyAccept:
		return "policy is not accept"
	}
	return ""
}

func rulesDiff(want []ruleSpec, got []*nftables.Rule) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rules, want %d", len(got), len(want))
	}
	for i, w := range want {
		if !bytes.Equal(got[i].UserData, w.userData()) || !nftutil.SameExprs(nftables.TableFamilyINet, w.exprs, got[i].Exprs) {
			return fmt.Sprintf("rule %d (%s) differs", i+1, w.comment)
		}
	}
	return ""
}

func setDiff(want setSpec, got *nftables.Set) string {
	w := want.nftSet(table(), 0)
	switch {
	case got.Anonymous || got.Constant || got.IsMap || got.HasTimeout || got.Dynamic:
		return "flags differ"
	case got.Interval != w.Interval || got.Concatenation != w.Concatenation:
		return "interval or concatenation flag differs"
	case got.KeyType.GetNFTMagic() != w.KeyType.GetNFTMagic() || got.KeyType.Bytes != uint32(want.keyLen()):
		return fmt.Sprintf("key type %s (%d bytes), want %s (%d bytes)",
			got.KeyType.Name, got.KeyType.Bytes, w.KeyType.Name, want.keyLen())
	}
	return ""
}
