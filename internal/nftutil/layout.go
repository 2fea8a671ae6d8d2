package nftutil

import (
	"bytes"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
)

// Comment is a rule's user data holding comment, as nft writes it (and
// lists it as `comment "..."`).
func Comment(comment string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, comment)
}

// BaseChainDiff says how a base chain read back from the kernel (got)
// differs from the one written (want) in hook, priority, type or policy (a
// policy read back as unset is accept), or "" when it does not.
func BaseChainDiff(want, got *nftables.Chain) string {
	wantPolicy := nftables.ChainPolicyAccept
	if want.Policy != nil {
		wantPolicy = *want.Policy
	}
	gotPolicy := nftables.ChainPolicyAccept
	if got.Policy != nil {
		gotPolicy = *got.Policy
	}
	switch {
	case want.Hooknum == nil:
		return "not a base chain (nothing to compare)"
	case got.Hooknum == nil || *got.Hooknum != *want.Hooknum:
		return "hook differs"
	case want.Priority == nil || got.Priority == nil || *got.Priority != *want.Priority:
		return "priority differs"
	case got.Type != want.Type:
		return fmt.Sprintf("type %q, want %q", got.Type, want.Type)
	case gotPolicy != wantPolicy:
		return fmt.Sprintf("policy %d, want %d", gotPolicy, wantPolicy)
	}
	return ""
}

// RulesDiff says how the rules of a chain read back from the kernel (got)
// differ from the ones written (want), in number, user data (comments) or
// expressions (SameExprs), or "" when they do not.
func RulesDiff(family nftables.TableFamily, want, got []*nftables.Rule) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d rules, want %d", len(got), len(want))
	}
	for i, w := range want {
		if !bytes.Equal(got[i].UserData, w.UserData) || !SameExprs(family, w.Exprs, got[i].Exprs) {
			return fmt.Sprintf("rule %d differs", i+1)
		}
	}
	return ""
}
