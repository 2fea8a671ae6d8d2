package nft

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// kernelTable is firewalld's table as read from the kernel (without the
// set elements).
type kernelTable struct {
	table  *nftables.Table
	chains []*nftables.Chain
	rules  map[string][]*nftables.Rule
	sets   []*nftables.Set
}

// content is the dynamic part of the table as a full read finds it.
type content struct {
	// elems are the elements of every set, fixed and peer sets.
	elems elems
	// sets are the peer sets.
	sets map[string]struct{}
	// chains are the group chains, each with the fingerprint of its rules.
	chains map[model.GroupKey]string
}

func newContent() *content {
	return &content{elems: elems{}, sets: map[string]struct{}{}, chains: map[model.GroupKey]string{}}
}

// staticDiff says how the table read from the kernel differs from rs in
// its static part (table flags, the fixed sets, the fixed chains and their
// rules, and the kinds of everything else: a chain that is not a regular
// group chain, a set that is neither a fixed set nor a peer set of the
// right type), or "" when it does not. Any difference makes firewalld
// recreate the table; the table of an older layout is replaced that way.
// Otherwise it returns the table's peer sets and group chains (with the
// fingerprints of their rules: rules that differ are rewritten, not the
// table).
//
// Rules compare by their expressions marshalled again
// (nftutil.SameExprs): what the kernel dumps decodes into the same values
// firewalld wrote, except a lookup's set id and a counter's counts.
func staticDiff(rs *ruleset, kt kernelTable) (string, *content) {
	if kt.table.Flags != 0 {
		return fmt.Sprintf("table flags %#x", kt.table.Flags), nil
	}
	c := newContent()
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
		k, ok := parseGroupChain(got.Name)
		if !ok {
			return "chain " + got.Name + " is not firewalld's", nil
		}
		if got.Hooknum != nil {
			return "chain " + got.Name + " is a base chain", nil
		}
		c.chains[k] = kernelFingerprint(kt.rules[got.Name])
	}
	if fixed != len(rs.chains) {
		for _, want := range rs.chains {
			if !hasChain(kt.chains, want.name) {
				return "chain " + want.name + " missing", nil
			}
		}
	}
	found := 0
	for _, got := range kt.sets {
		want, ok := rs.setSpec(got.Name)
		if !ok {
			return "set " + got.Name + " is not firewalld's", nil
		}
		if why := setDiff(want, got); why != "" {
			return "set " + want.name + ": " + why, nil
		}
		if _, peer := parsePeerSetName(got.Name); peer {
			c.sets[got.Name] = struct{}{}
		} else {
			found++
		}
	}
	if found != len(rs.sets) {
		for _, want := range rs.sets {
			if !hasSet(kt.sets, want.name) {
				return "set " + want.name + " missing", nil
			}
		}
	}
	return "", c
}

func hasChain(chains []*nftables.Chain, name string) bool {
	for _, c := range chains {
		if c.Name == name {
			return true
		}
	}
	return false
}

func hasSet(sets []*nftables.Set, name string) bool {
	for _, s := range sets {
		if s.Name == name {
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
	switch {
	case got.Anonymous || got.Constant || got.HasTimeout || got.Dynamic || got.Concatenation:
		return "flags differ"
	case got.IsMap != want.verdicts || got.Interval != want.interval:
		return "map or interval flag differs"
	}
	if want.verdicts {
		if got.KeyType.Name != nftables.TypeVerdict.Name {
			return fmt.Sprintf("data type is not verdict (key type read as %s)", got.KeyType.Name)
		}
		return ""
	}
	if w := want.keyType(); got.KeyType.GetNFTMagic() != w.GetNFTMagic() || got.KeyType.Bytes != uint32(want.keyLen()) {
		return fmt.Sprintf("key type %s (%d bytes), want %s (%d bytes)", got.KeyType.Name, got.KeyType.Bytes, w.Name, want.keyLen())
	}
	return ""
}

// fingerprint is what group chain k's rules read back as, when the table
// holds rules (see kernelFingerprint): equal fingerprints, equal rules.
func (rs *ruleset) fingerprint(k model.GroupKey, rules []model.Rule) string {
	var b []byte
	for _, r := range rs.groupRules(k, rules) {
		b = appendRule(b, r.exprs, r.userData())
	}
	return string(b)
}

// fingerprintEmpty is the fingerprint of a chain without rules.
func (rs *ruleset) fingerprintEmpty() string { return kernelFingerprint(nil) }

// kernelFingerprint is the fingerprint of a chain's rules read from the
// kernel.
func kernelFingerprint(rules []*nftables.Rule) string {
	var b []byte
	for _, r := range rules {
		b = appendRule(b, r.Exprs, r.UserData)
	}
	return string(b)
}

// appendRule appends a rule's expressions as the kernel receives them
// (nftutil.MarshalExpr: no set id, no counts) and its user data, each
// with its length.
func appendRule(b []byte, exprs []expr.Any, userData []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(exprs)))
	for _, e := range exprs {
		m, err := nftutil.MarshalExpr(nftables.TableFamilyINet, e)
		if err != nil {
			m = fmt.Appendf(nil, "unmarshallable %T", e) // never what firewalld writes
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
		b = append(b, m...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(userData)))
	return append(b, userData...)
}
