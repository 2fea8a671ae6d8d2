package nft

import (
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// TableName is proxyd's table, family inet. proxyd owns it whole and
// touches no other.
const TableName = "nodenet-proxyd"

// Packet mark bits, set in prerouting and output on the first packet of a
// connection to a VIP, tested and cleared in postrouting: the skb's mark
// survives IPVS's NAT forward, so a decision taken before IPVS reaches the
// postrouting hook after it. Other users of the mark (firewalld, routerd,
// CNI plugins, policy routing) must leave these bits alone.
const (
	// MasqueradeMark asks for masquerading: a client outside this node's
	// pod CIDRs reaching a VIP that does not keep client addresses.
	// kube-proxy's bit (KUBE-MARK-MASQ).
	MasqueradeMark uint32 = 0x4000
	// HairpinMark: a local pod reaching a VIP; masqueraded only if IPVS
	// sends it to a local pod (the destination is then in the pod CIDRs).
	// Not one of kube-proxy's (0x8000 is its KUBE-MARK-DROP, which leftover
	// iptables rules of an old install would still drop).
	HairpinMark uint32 = 0x2000
)

// Chain priorities. The filter chains run after conntrack (-200, so ct
// state is known) and before NAT's dstnat (-100) and IPVS, which schedules
// at LOCAL_IN (remote clients) and at LOCAL_OUT priority -98 (this node's
// own connections). The nat chain runs at srcnat (100), after IPVS has
// forwarded the packet through LOCAL_OUT to POSTROUTING.
const (
	filterPriority nftables.ChainPriority = -110 // dstnat - 10
	natPriority    nftables.ChainPriority = 100  // srcnat
)

// Chain names.
const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
)

// chainSpec is one base chain of the table.
type chainSpec struct {
	name     string
	hook     nftables.ChainHook
	priority nftables.ChainPriority
	typ      nftables.ChainType
	rules    []ruleSpec
}

// ruleSpec is one rule: its expressions and a comment nft shows.
type ruleSpec struct {
	comment string
	exprs   []expr.Any
}

func (r ruleSpec) userData() []byte {
	return userdata.AppendString(nil, userdata.TypeComment, r.comment)
}

// ruleset is the static part of the table: chains, rules, set definitions.
// Everything that changes at run time is a set element.
type ruleset struct {
	sets   []setSpec
	chains []chainSpec
}

func (rs *ruleset) set(name string) (setSpec, bool) {
	for _, s := range rs.sets {
		if s.name == name {
			return s, true
		}
	}
	return setSpec{}, false
}

// newRuleset returns the table's static part. It is a function (no
// package state): every applier holds its own copy.
func newRuleset() *ruleset {
	vipFields := []field{fieldAddr, fieldProto, fieldPort}
	rs := &ruleset{}
	for _, v6 := range []bool{false, true} {
		f := ipv4()
		if v6 {
			f = ipv6()
		}
		rs.sets = append(rs.sets,
			setSpec{name: f.vips, v6: v6, kind: hashSet, fields: vipFields,
				comment: "every virtual service: address . protocol . port"},
			setSpec{name: f.local, v6: v6, kind: hashSet, fields: vipFields,
				comment: "externalTrafficPolicy Local: clients keep their address"},
			setSpec{name: f.podCIDRs, v6: v6, kind: rangeSet, fields: []field{fieldAddr},
				comment: "this node's pod CIDRs"},
			setSpec{name: f.restricted, v6: v6, kind: hashSet, fields: vipFields,
				comment: "LoadBalancer VIPs with loadBalancerSourceRanges"},
			setSpec{name: f.allowed, v6: v6, kind: concatRangeSet,
				fields:  []field{fieldAddr, fieldProto, fieldPort, fieldAddr},
				comment: "VIP . source range that may reach it"},
		)
	}

	filter := []ruleSpec{establishedRule()}
	for _, f := range []family{ipv4(), ipv6()} {
		filter = append(filter, sourceRangeRule(f))
	}
	for _, f := range []family{ipv4(), ipv6()} {
		filter = append(filter, markRule(f), hairpinMarkRule(f))
	}
	nat := []ruleSpec{masqueradeMarkedRule()}
	for _, f := range []family{ipv4(), ipv6()} {
		nat = append(nat, hairpinRule(f))
	}
	rs.chains = []chainSpec{
		{name: chainPrerouting, hook: *nftables.ChainHookPrerouting, priority: filterPriority,
			typ: nftables.ChainTypeFilter, rules: filter},
		{name: chainOutput, hook: *nftables.ChainHookOutput, priority: filterPriority,
			typ: nftables.ChainTypeFilter, rules: filter},
		{name: chainPostrouting, hook: *nftables.ChainHookPostrouting, priority: natPriority,
			typ: nftables.ChainTypeNAT, rules: nat},
	}
	return rs
}
