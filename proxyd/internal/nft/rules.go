package nft

import (
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/internal/nftutil"
	"golang.org/x/sys/unix"
)

// family holds what differs between the IPv4 and IPv6 rules.
type family struct {
	nfproto               byte
	addrLen               uint32
	saddrOffset           uint32
	daddrOffset           uint32
	vips, local, podCIDRs string
	restricted, allowed   string
	suffix                string
}

func ipv4() family {
	return family{
		nfproto: unix.NFPROTO_IPV4, addrLen: 4, saddrOffset: 12, daddrOffset: 16,
		vips: setVIPs4, local: setLocalVIPs4, podCIDRs: setPodCIDRs4,
		restricted: setRestricted4, allowed: setAllowed4, suffix: "IPv4",
	}
}

func ipv6() family {
	return family{
		nfproto: unix.NFPROTO_IPV6, addrLen: 16, saddrOffset: 8, daddrOffset: 24,
		vips: setVIPs6, local: setLocalVIPs6, podCIDRs: setPodCIDRs6,
		restricted: setRestricted6, allowed: setAllowed6, suffix: "IPv6",
	}
}

// reg32 and native32: registers written in the form the kernel reports
// them, and values in host byte order (see nftutil.Reg32).
func reg32(i uint32) uint32 { return nftutil.Reg32(i) }

func native32(v uint32) []byte { return nftutil.Native32(v) }

// establishedRule ends the filter chains early for packets of known
// connections: everything is decided on a connection's first packet (NAT
// binds on it; loadBalancerSourceRanges apply to new connections, as in
// kube-proxy). New, invalid and untracked packets go on:
//
//	ct state established,related accept
func establishedRule() ruleSpec {
	return ruleSpec{
		comment: "established and related: decided on the first packet",
		exprs: []expr.Any{
			&expr.Ct{Register: reg32(0), Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: reg32(0), DestRegister: reg32(0), Len: 4,
				Mask: native32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED), Xor: native32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: reg32(0), Data: native32(0)},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
	}
}

// loadVIPKey loads daddr . l4proto . dport into the registers from 0 on.
func loadVIPKey(f family) []expr.Any {
	r := f.addrLen / 4
	return []expr.Any{
		&expr.Payload{DestRegister: reg32(0), Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOffset, Len: f.addrLen},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32(r)},
		&expr.Payload{DestRegister: reg32(r + 1), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
	}
}

func matchFamily(f family) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg32(0), Data: []byte{f.nfproto}},
	}
}

// sourceRangeRule drops a packet to a restricted LoadBalancer VIP whose
// source is not in that VIP's ranges:
//
//	meta nfproto ipv4 ip daddr . meta l4proto . th dport @lb_restricted4
//	ip daddr . meta l4proto . th dport . ip saddr != @lb_allowed4 drop
func sourceRangeRule(f family) ruleSpec {
	e := matchFamily(f)
	e = append(e, loadVIPKey(f)...)
	e = append(e,
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.restricted},
		// daddr . proto . port are still in their registers: append saddr.
		&expr.Payload{DestRegister: reg32(f.addrLen/4 + 2), Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOffset, Len: f.addrLen},
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.allowed, Invert: true},
		&expr.Verdict{Kind: expr.VerdictDrop},
	)
	return ruleSpec{comment: "loadBalancerSourceRanges (" + f.suffix + ")", exprs: e}
}

// markRule marks a packet to a VIP for masquerading unless it comes from a
// local pod or the VIP keeps client addresses:
//
//	meta nfproto ipv4 ip daddr . meta l4proto . th dport @vips4
//	ip daddr . meta l4proto . th dport != @vips_local4
//	ip saddr != @pod_cidrs4 meta mark set meta mark | 0x4000
func markRule(f family) ruleSpec {
	e := matchFamily(f)
	e = append(e, loadVIPKey(f)...)
	e = append(e,
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.vips},
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.local, Invert: true},
		&expr.Payload{DestRegister: reg32(0), Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOffset, Len: f.addrLen},
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.podCIDRs, Invert: true},
	)
	e = append(e, setMark(MasqueradeMark)...)
	return ruleSpec{comment: "masquerade mark: VIP from outside the pod CIDRs (" + f.suffix + ")", exprs: e}
}

// masqueradeMarkedRule masquerades packets with the masquerade mark:
//
//	meta mark & 0x4000 == 0x4000 meta mark set meta mark & 0xffff9fff
//	masquerade fully-random
func masqueradeMarkedRule() ruleSpec {
	e := testMark(MasqueradeMark)
	e = append(e, clearMarks()...)
	e = append(e, &expr.Masq{FullyRandom: true})
	return ruleSpec{comment: "masquerade marked", exprs: e}
}

// hairpinMarkRule marks a packet from a local pod to a VIP: IPVS may send
// it to a local pod, and then it must be masqueraded:
//
//	meta nfproto ipv4 ip daddr . meta l4proto . th dport @vips4
//	ip saddr @pod_cidrs4 meta mark set meta mark | 0x2000
func hairpinMarkRule(f family) ruleSpec {
	e := matchFamily(f)
	e = append(e, loadVIPKey(f)...)
	e = append(e,
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.vips},
		&expr.Payload{DestRegister: reg32(0), Base: expr.PayloadBaseNetworkHeader, Offset: f.saddrOffset, Len: f.addrLen},
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.podCIDRs},
	)
	e = append(e, setMark(HairpinMark)...)
	return ruleSpec{comment: "hairpin mark: VIP from a local pod (" + f.suffix + ")", exprs: e}
}

// hairpinRule masquerades a connection from a local pod that IPVS sent to
// a local pod: without it the backend answers the client straight over the
// bridge, past IPVS's de-NAT (and a pod reaching itself through a VIP never
// gets its answer):
//
//	meta mark & 0x2000 == 0x2000 meta nfproto ipv4 ip daddr @pod_cidrs4
//	meta mark set meta mark & 0xffff9fff masquerade fully-random
func hairpinRule(f family) ruleSpec {
	e := testMark(HairpinMark)
	e = append(e, matchFamily(f)...)
	e = append(e,
		&expr.Payload{DestRegister: reg32(0), Base: expr.PayloadBaseNetworkHeader, Offset: f.daddrOffset, Len: f.addrLen},
		&expr.Lookup{SourceRegister: reg32(0), SetName: f.podCIDRs},
	)
	e = append(e, clearMarks()...)
	e = append(e, &expr.Masq{FullyRandom: true})
	return ruleSpec{comment: "hairpin: local pod to local pod through a VIP (" + f.suffix + ")", exprs: e}
}

// setMark ORs bit into the packet's mark.
func setMark(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg32(0)},
		&expr.Bitwise{SourceRegister: reg32(0), DestRegister: reg32(0), Len: 4,
			Mask: native32(^bit), Xor: native32(bit)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg32(0)},
	}
}

// testMark matches packets whose mark has bit.
func testMark(bit uint32) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg32(0)},
		&expr.Bitwise{SourceRegister: reg32(0), DestRegister: reg32(0), Len: 4,
			Mask: native32(bit), Xor: native32(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg32(0), Data: native32(bit)},
	}
}

// clearMarks clears proxyd's bits from the packet's mark (as kube-proxy
// does, so that a packet that comes round again, e.g. encapsulated, is not
// taken as marked).
func clearMarks() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyMARK, Register: reg32(0)},
		&expr.Bitwise{SourceRegister: reg32(0), DestRegister: reg32(0), Len: 4,
			Mask: native32(^(MasqueradeMark | HairpinMark)), Xor: native32(0)},
		&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg32(0)},
	}
}
