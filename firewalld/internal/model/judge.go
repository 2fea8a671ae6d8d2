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
	if g, ok := d.EgressGroup[src]; ok && !d.Passes(GroupKey{Egress, g}, dst, proto, port) {
		return DeniedEgress
	}
	if g, ok := d.IngressGroup[dst]; ok && !d.Passes(GroupKey{Ingress, g}, src, proto, port) {
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

// Passes mirrors a group chain: some rule's peer holds the other end and
// its ports the packet's. The trace asks it for each direction.
func (d *Datapath) Passes(g GroupKey, other netip.Addr, proto uint8, port uint16) bool {
	for _, r := range d.Chains[g] {
		if r.Ports.Contains(proto, port) && (r.Peer == AnyPeer || d.InPeer(r.Peer, other)) {
			return true
		}
	}
	return false
}

// InPeer reports whether peer set p holds a.
func (d *Datapath) InPeer(p ID, a netip.Addr) bool {
	if _, ok := d.PeerElems[PeerElem{Peer: p, From: a, To: a}]; ok {
		return true
	}
	for e := range d.PeerElems {
		if e.Peer == p && e.From.BitLen() == a.BitLen() && e.From.Compare(a) <= 0 && a.Compare(e.To) <= 0 {
			return true
		}
	}
	return false
}

// Contains reports whether the range holds proto and port.
func (r PortRange) Contains(proto uint8, port uint16) bool {
	return r.ProtoFrom <= proto && proto <= r.ProtoTo && r.PortFrom <= port && port <= r.PortTo
}
