package nft

import (
	"bytes"
	"encoding/binary"

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
	return ruleSpec{comment: "pending: " + what + " a local address not known yet (" + f.name + ")", exprs: e}
}

// groupJumpRule sends the packets of an isolated local pod to its group's
// chain: the source's egress group, or the destination's ingress group.
// An address in no group (not isolated) matches nothing and goes on:
//
//	meta nfproto ipv4 ip saddr vmap @eg_group4
func groupJumpRule(f family, dir model.Direction) ruleSpec {
	e := matchFamily(f)
	e = append(e,
		loadAddr(f, dir == model.Egress, 0),
		&expr.Lookup{SourceRegister: reg32(0), DestRegister: unix.NFT_REG_VERDICT, IsDestRegSet: true, SetName: f.groupMap(dir)},
	)
	return ruleSpec{comment: dir.String() + " of isolated pods: their group's chain (" + f.name + ")", exprs: e}
}

// allowRule is one rule of a group chain: the packet passes (returns to
// the pods chain) when the other end is in the peer's set of family f
// (f nil: any address) and the protocol and port are in r's range. The
// other end is the destination for egress, the source for ingress:
//
//	meta nfproto ipv4 ip daddr @peer-0000b001-4 meta l4proto tcp th dport 80 return
//
// Ranges compare as nft writes them (cmp gte, cmp lte); a range that is
// everything is no match at all.
func allowRule(f *family, dir model.Direction, r model.Rule) []expr.Any {
	var e []expr.Any
	if f != nil {
		e = append(matchFamily(*f),
			loadAddr(*f, dir == model.Ingress, 0),
			&expr.Lookup{SourceRegister: reg32(0), SetName: peerSetName(r.Peer, f.v6)},
		)
	}
	p := r.Ports
	if p.ProtoFrom != 0 || p.ProtoTo != 255 {
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32(0)})
		e = append(e, matchRange(reg32(0), []byte{p.ProtoFrom}, []byte{p.ProtoTo})...)
	}
	if p.PortFrom != 0 || p.PortTo != 65535 {
		e = append(e, &expr.Payload{DestRegister: reg32(0), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: portBytes})
		e = append(e, matchRange(reg32(0), binary.BigEndian.AppendUint16(nil, p.PortFrom), binary.BigEndian.AppendUint16(nil, p.PortTo))...)
	}
	return append(e, &expr.Verdict{Kind: expr.VerdictReturn})
}

// matchRange compares register reg with from..to (big endian).
func matchRange(reg uint32, from, to []byte) []expr.Any {
	if bytes.Equal(from, to) {
		return []expr.Any{&expr.Cmp{Op: expr.CmpOpEq, Register: reg, Data: from}}
	}
	return []expr.Any{
		&expr.Cmp{Op: expr.CmpOpGte, Register: reg, Data: from},
		&expr.Cmp{Op: expr.CmpOpLte, Register: reg, Data: to},
	}
}
