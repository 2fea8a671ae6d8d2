package nft

import (
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/nftutil"
	"golang.org/x/sys/unix"
)

// reg32 is the i-th 32-bit register in the form the kernel reports it
// (nftutil.Reg32), so that rules read back compare equal.
func reg32(i uint32) uint32 { return nftutil.Reg32(i) }

// establishedRule ends the base chains early for packets of known
// connections: policies decide on a connection's first packet, as
// NetworkPolicy means (an established connection survives a policy
// change). New, invalid and untracked packets go on:
//
//	ct state established,related accept
func establishedRule() ruleSpec {
	return ruleSpec{
		comment: "established and related: decided on the first packet",
		exprs: []expr.Any{
			&expr.Ct{Register: reg32(0), Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: reg32(0), DestRegister: reg32(0), Len: 4,
				Mask: nftutil.Native32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: nftutil.Native32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg32(0), Data: nftutil.Native32(0)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	}
}

// localSourceRule lets the node's own connections out unpoliced (kubelet
// probes, host processes): NetworkPolicy does not restrict the node.
// Packets IPVS forwards pass the output hook too, with the client's
// source, and are policed:
//
//	fib saddr type local accept
func localSourceRule() ruleSpec {
	return ruleSpec{
		comment: "the node's own traffic",
		exprs: []expr.Any{
			&expr.Fib{Register: reg32(0), FlagSADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: reg32(0), Data: nftutil.Native32(unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	}
}

func jumpRule(chain string) ruleSpec {
	return ruleSpec{comment: "to " + chain, exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}}
}

func matchFamily(f family) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg32(0), Data: []byte{f.nfproto}},
	}
}

// loadAddr loads the source (or destination) address into the registers
// from reg32(r) on.
func loadAddr(f family, source bool, r uint32) *expr.Payload {
	off := f.daddrOffset
	if source {
		off = f.saddrOffset
	}
	return &expr.Payload{DestRegister: reg32(r), Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: f.addrLen}
}

// pendingRule drops packets from (source) or to an address of the node's
// pod CIDRs that firewalld does not know yet: a pod that may be one a
// policy selects (fail closed):
//
//	meta nfproto ipv4 ip saddr @local_cidrs4 ip saddr != @known_local4 counter drop
func pendingRule(f family, source bool) ruleSpec {
	e := matchFamily(f)
	e = append(e,
		loadAddr(f, source, 0),
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.localCIDRs},
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.known, Invert: true},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)
	what := "to"
	if source {
		what = "from"
	}
	return ruleSpec{comment: "pending: " + what + " a local address not known yet (" + f.suffix + ")", exprs: e}
}

// directionRules are one family's rules of the egress or ingress chain.
// "own" is the local pod's address (source for egress, destination for
// ingress), "peer" the other end. A map lookup with a destination register
// replaces an address by its group or identity; the concatenated lookup
// then reads group . identity . protocol . port from the registers (each
// field in a 32-bit register of its own: the kernel zeroes the rest of a
// register on a 1- or 2-byte load):
//
//	meta nfproto ipv4 ip saddr map @eg_group4 . ip daddr map @pod_ident4 . meta l4proto . th dport @eg_allow return
//	meta nfproto ipv4 ip saddr map @eg_group4 . ip daddr map @region_ident4 . meta l4proto . th dport @eg_allow return
//	meta nfproto ipv4 ip saddr map @eg_group4 . meta l4proto . th dport @eg_any return
//	meta nfproto ipv4 ip saddr vmap @eg_deny4
//
// A packet whose own address is in no group (not isolated) matches none
// of them and returns; one of an isolated pod that no allow element
// matches jumps to its group's deny chain.
func directionRules(f family, dir model.Direction) []ruleSpec {
	ownIsSource := dir == model.Egress
	group, deny, allow, anyPeer := f.egGroup, f.egDeny, setEgressAllow, setEgressAny
	if dir == model.Ingress {
		group, deny, allow, anyPeer = f.ingGroup, f.ingDeny, setIngressAllow, setIngressAny
	}
	ownGroup := func() []expr.Any {
		e := matchFamily(f)
		return append(e,
			loadAddr(f, ownIsSource, 0),
			&expr.Lookup{SourceRegister: reg32(0), DestRegister: reg32(0), IsDestRegSet: true, SetName: group},
		)
	}
	protoPort := func(r uint32) []expr.Any {
		return []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32(r)},
			&expr.Payload{DestRegister: reg32(r + 1), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: portBytes},
		}
	}
	peerRule := func(identSet, what string) ruleSpec {
		e := ownGroup()
		e = append(e,
			// The peer's address takes registers 1 to 4 (IPv6); the map
			// lookup leaves its identity in register 1, and protocol and
			// port overwrite 2 and 3.
			loadAddr(f, !ownIsSource, 1),
			&expr.Lookup{SourceRegister: reg32(1), DestRegister: reg32(1), IsDestRegSet: true, SetName: identSet},
		)
		e = append(e, protoPort(2)...)
		e = append(e,
			&expr.Lookup{SourceRegister: reg32(0), SetName: allow},
			&expr.Verdict{Kind: expr.VerdictReturn},
		)
		return ruleSpec{comment: dir.String() + " allowed: " + what + " (" + f.suffix + ")", exprs: e}
	}
	anyRule := func() ruleSpec {
		e := ownGroup()
		e = append(e, protoPort(1)...)
		e = append(e,
			&expr.Lookup{SourceRegister: reg32(0), SetName: anyPeer},
			&expr.Verdict{Kind: expr.VerdictReturn},
		)
		return ruleSpec{comment: dir.String() + " allowed: any peer (" + f.suffix + ")", exprs: e}
	}
	denyRule := func() ruleSpec {
		e := matchFamily(f)
		e = append(e,
			loadAddr(f, ownIsSource, 0),
			&expr.Lookup{SourceRegister: reg32(0), DestRegister: unix.NFT_REG_VERDICT, IsDestRegSet: true, SetName: deny},
		)
		return ruleSpec{comment: dir.String() + " denied: to the group's deny chain (" + f.suffix + ")", exprs: e}
	}
	return []ruleSpec{
		peerRule(f.podIdent, "pod identity"),
		peerRule(f.regionIdent, "region identity"),
		anyRule(),
		denyRule(),
	}
}
