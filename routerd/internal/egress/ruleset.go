package egress

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/internal/nftutil"
	"golang.org/x/sys/unix"
)

// TableName is routerd's table, family inet. routerd owns it whole and
// touches no other.
const TableName = "nodenet-routerd"

// Set and chain names.
const (
	setPodCIDRs4     = "pod_cidrs4"
	setPodCIDRs6     = "pod_cidrs6"
	setClusterCIDRs4 = "cluster_cidrs4"
	setClusterCIDRs6 = "cluster_cidrs6"
	chainPostrouting = "postrouting"
)

// setSpec is one set of the table: addresses of one family, intervals.
type setSpec struct {
	name    string
	v6      bool
	comment string
}

// setSpecs are the table's sets, in the order they are created.
func setSpecs() []setSpec {
	return []setSpec{
		{setPodCIDRs4, false, "this node's pod CIDRs"},
		{setPodCIDRs6, true, "this node's pod CIDRs"},
		{setClusterCIDRs4, false, "destinations never masqueraded"},
		{setClusterCIDRs6, true, "destinations never masqueraded"},
	}
}

func (s setSpec) keyLen() int {
	if s.v6 {
		return 16
	}
	return 4
}

// nftSet is the set's definition for google/nftables. id is its id within
// a transaction (set explicitly: the library's own counter is global).
func (s setSpec) nftSet(t *nftables.Table, id uint32) *nftables.Set {
	kt := nftables.TypeIPAddr
	if s.v6 {
		kt = nftables.TypeIP6Addr
	}
	return &nftables.Set{
		Table: t, ID: id, Name: s.name, Interval: true,
		KeyType: kt, KeyByteOrder: binaryutil.BigEndian, Comment: s.comment,
	}
}

// ruleSpec is one rule of the chain: its expressions, its comment, and
// how nft lists it (for documentation and tests).
type ruleSpec struct {
	comment string
	nft     string
	exprs   []expr.Any
}

func (r ruleSpec) rule(t *nftables.Table, c *nftables.Chain) *nftables.Rule {
	return &nftables.Rule{Table: t, Chain: c, Exprs: r.exprs, UserData: nftutil.Comment(r.comment)}
}

// masqueradeRule masquerades a packet from one of this node's pods to an
// address outside the cluster:
//
//	meta nfproto ipv4 ip saddr @pod_cidrs4 ip daddr != @cluster_cidrs4
//	masquerade fully-random
func masqueradeRule(v6 bool) ruleSpec {
	nfproto, addrLen, saddr, daddr := byte(unix.NFPROTO_IPV4), uint32(4), uint32(12), uint32(16)
	pods, cluster, ip, fam := setPodCIDRs4, setClusterCIDRs4, "ip", "IPv4"
	if v6 {
		nfproto, addrLen, saddr, daddr = unix.NFPROTO_IPV6, 16, 8, 24
		pods, cluster, ip, fam = setPodCIDRs6, setClusterCIDRs6, "ip6", "IPv6"
	}
	reg := nftutil.Reg32(0)
	comment := "pods to outside the cluster (" + fam + ")"
	return ruleSpec{
		comment: comment,
		nft: ip + " saddr @" + pods + " " + ip + " daddr != @" + cluster +
			` masquerade fully-random comment "` + comment + `"`,
		exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: []byte{nfproto}},
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: saddr, Len: addrLen},
			&expr.Lookup{SourceRegister: reg, SetName: pods},
			&expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: daddr, Len: addrLen},
			&expr.Lookup{SourceRegister: reg, SetName: cluster, Invert: true},
			&expr.Masq{FullyRandom: true},
		},
	}
}

// ruleSpecs are the postrouting chain's rules, in order.
func ruleSpecs() []ruleSpec {
	return []ruleSpec{masqueradeRule(false), masqueradeRule(true)}
}

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

// postrouting is the chain: nat at srcnat (100), after routing has chosen
// the outgoing interface and after IPVS (proxyd) has forwarded a packet to
// a Service, so a pod's connection to a Service reaches it with the
// endpoint as destination.
func postrouting(t *nftables.Table) *nftables.Chain {
	accept := nftables.ChainPolicyAccept
	return &nftables.Chain{
		Name: chainPostrouting, Table: t,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
		Type: nftables.ChainTypeNAT, Policy: &accept,
	}
}
