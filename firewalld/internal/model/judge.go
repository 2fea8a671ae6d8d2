package model

import "net/netip"

// Verdict is what the datapath does with the first packet of a connection.
type Verdict uint8

// The verdicts, as the table's chains reach them.
const (
	// Allowed: every check passed.
	Allowed Verdict = iota + 1
	// DeniedPending: an address of the node's pod CIDRs that firewalld does
	// not know yet (fail closed for new pods).
	DeniedPending
	// DeniedEgress: the source is a local pod isolated for egress and no
	// element of its group lets the packet out.
	DeniedEgress
	// DeniedIngress: the destination is a local pod isolated for ingress
	// and no element of its group lets the packet in.
	DeniedIngress
)

func (v Verdict) String() string {
	switch v {
	case Allowed:
		return "allowed"
	case DeniedPending:
		return "denied (pending pod)"
	case DeniedEgress:
		return "denied (egress)"
	case DeniedIngress:
		return "denied (ingress)"
	}
	return "Verdict(?)"
}

// Judge returns the verdict of the table's pods chain for the first packet
// from src to dst with protocol proto and destination port (for protocols
// without ports, whatever the transport header's bytes 2-3 hold). It is the
// rules of package nft, written over the Datapath: tests hold the kernel to
// it, and explanations are computed with it.
func (d *Datapath) Judge(src, dst netip.Addr, proto uint8, port uint16) Verdict {
	if d.pending(src) || d.pending(dst) {
		return DeniedPending
	}
	if g, ok := d.EgressGroup[src]; ok && !d.allowed(d.EgressAllow, d.EgressAny, g, dst, proto, port) {
		return DeniedEgress
	}
	if g, ok := d.IngressGroup[dst]; ok && !d.allowed(d.IngressAllow, d.IngressAny, g, src, proto, port) {
		return DeniedIngress
	}
	return Allowed
}

func (d *Datapath) pending(a netip.Addr) bool {
	if _, known := d.KnownLocal[a]; known {
		return false
	}
	for _, p := range d.LocalCIDRs {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowed mirrors the three allow rules of a direction: the peer's pod
// identity, then its region's identity, then the rules without peers.
func (d *Datapath) allowed(allow map[Allow]struct{}, anyAllow map[AnyAllow]struct{}, g ID, peer netip.Addr, proto uint8, port uint16) bool {
	if id, ok := d.PodIdent[peer]; ok && inAllow(allow, g, id, proto, port) {
		return true
	}
	if id, ok := d.RegionIdent(peer); ok && inAllow(allow, g, id, proto, port) {
		return true
	}
	for a := range anyAllow {
		if a.Group == g && a.Ports.Contains(proto, port) {
			return true
		}
	}
	return false
}

func inAllow(allow map[Allow]struct{}, g, id ID, proto uint8, port uint16) bool {
	for a := range allow {
		if a.Group == g && a.Ident == id && a.Ports.Contains(proto, port) {
			return true
		}
	}
	return false
}

// RegionIdent returns the identity of the region holding a.
func (d *Datapath) RegionIdent(a netip.Addr) (ID, bool) {
	for _, r := range d.Regions {
		if r.From.BitLen() == a.BitLen() && r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0 {
			return r.Ident, true
		}
	}
	return 0, false
}

// Contains reports whether the range holds proto and port.
func (r PortRange) Contains(proto uint8, port uint16) bool {
	return r.ProtoFrom <= proto && proto <= r.ProtoTo && r.PortFrom <= port && port <= r.PortTo
}
