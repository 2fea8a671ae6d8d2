package nft

import (
	"bytes"
	"fmt"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// kernelTable is firewalld's table as read from the kernel.
type kernelTable struct {
	table  *nftables.Table
	chains []*nftables.Chain
	rules  map[string][]*nftables.Rule
	sets   []*nftables.Set
}

// staticDiff says how the table read from the kernel differs from rs in
// its static part (table flags, set definitions, fixed chains and their
// rules, the rules of the deny chains), or "" when it does not. Any
// difference makes firewalld recreate the table. It also returns the deny
// chains the table has.
//
// Rules compare by their expressions marshalled again
// (nftutil.SameExprs): what the kernel dumps decodes into the same values
// firewalld wrote, except a lookup's set id and a counter's counts.
func staticDiff(rs *ruleset, kt kernelTable) (string, map[string]struct{}) {
	deny := map[string]struct{}{}
	if kt.table.Flags != 0 {
		return fmt.Sprintf("table flags %#x", kt.table.Flags), nil
	}
	fixed := 0
	for _, got := range kt.chains {
		if want, ok := rs.chain(got.Name); ok {
			fixed++
			if why := chainDiff(want, got); why != "" {
				return "chain " + want.name + ": " + why, nil
			}
			if why := rulesDiff(want.rules, kt.rules[got.Name]); why != "" {
				return "chain " + want.name + ": " + why, nil
			}
			continue
		}
		dir, id, ok := parseDenyChain(got.Name)
		if !ok {
			return "chain " + got.Name + " is not firewalld's", nil
		}
		if got.Hooknum != nil {
			return "chain " + got.Name + " is a base chain", nil
		}
		if why := rulesDiff(rs.denyRules(dir, id), kt.rules[got.Name]); why != "" {
			return "chain " + got.Name + ": " + why, nil
		}
		deny[got.Name] = struct{}{}
	}
	if fixed != len(rs.chains) {
		for _, want := range rs.chains {
			if !hasChain(kt.chains, want.name) {
				return "chain " + want.name + " missing", nil
			}
		}
	}
	if len(kt.sets) != len(rs.sets) {
		return fmt.Sprintf("%d sets, want %d", len(kt.sets), len(rs.sets)), nil
	}
	for _, want := range rs.sets {
		var got *nftables.Set
		for _, s := range kt.sets {
			if s.Name == want.name {
				got = s
			}
		}
		if got == nil {
			return "set " + want.name + " missing", nil
		}
		if why := setDiff(want, got); why != "" {
			return "set " + want.name + ": " + why, nil
		}
	}
	return "", deny
}

func (rs *ruleset) chain(name string) (chainSpec, bool) {
	for _, c := range rs.chains {
		if c.name == name {
			return c, true
		}
	}
	return chainSpec{}, false
}

func hasChain(chains []*nftables.Chain, name string) bool {
	for _, c := range chains {
		if c.Name == name {
			return true
		}
	}
	return false
}

func chainDiff(want chainSpec, got *nftables.Chain) string {
	if want.hook == nil {
		if got.Hooknum != nil {
			return "is a base chain"
		}
		return ""
	}
	switch {
	case got.Hooknum == nil || *got.Hooknum != *want.hook:
		return "hook differs"
	case got.Priority == nil || *got.Priority != want.priority:
		return "priority differs"
	case got.Type != nftables.ChainTypeFilter:
		return fmt.Sprintf("type %q, want %q", got.Type, nftables.ChainTypeFilter)
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

// setDiff compares a set's definition. google/nftables v0.3.0 reads a
// verdict map's data type into KeyType (and loses the key type): for those
// the key type cannot be checked, only that the data is verdicts.
func setDiff(want setSpec, got *nftables.Set) string {
	w := want.nftSet(table(), 0)
	switch {
	case got.Anonymous || got.Constant || got.HasTimeout || got.Dynamic:
		return "flags differ"
	case got.IsMap != w.IsMap || got.Interval != w.Interval || got.Concatenation != w.Concatenation:
		return "map, interval or concatenation flag differs"
	}
	if want.data == verdictData {
		if got.KeyType.Name != nftables.TypeVerdict.Name {
			return fmt.Sprintf("data type is not verdict (key type read as %s)", got.KeyType.Name)
		}
		return ""
	}
	if got.KeyType.GetNFTMagic() != w.KeyType.GetNFTMagic() || got.KeyType.Bytes != uint32(want.keyLen()) {
		return fmt.Sprintf("key type %s (%d bytes), want %s (%d bytes)",
			got.KeyType.Name, got.KeyType.Bytes, w.KeyType.Name, want.keyLen())
	}
	if want.data == markData && (got.DataType.GetNFTMagic() != nftables.TypeMark.GetNFTMagic() || got.DataType.Bytes != markBytes) {
		return fmt.Sprintf("data type %s (%d bytes), want mark", got.DataType.Name, got.DataType.Bytes)
	}
	return ""
}
