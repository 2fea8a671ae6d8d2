// Package model holds firewalld's desired datapath: what the node's one
// nftables table must contain so that packets see the NetworkPolicies in
// force. The policy compiler (package policy) produces it from API objects;
// the nftables layer (package nft) programs it. It is plain data.
//
// # How a packet is judged
//
// The local pods that the same policies select (with the same named ports)
// form a target group, one per direction; each group is a chain of rules.
// A rule lets traffic of a port range pass to or from the addresses of a
// peer: a peer is a set of addresses (the pods a selector matches, the
// ranges of an ipBlock) shared by every rule that names it, or any address.
// A packet from S to D passes egress when S is not in a group, or when a
// rule of S's egress group matches D and the port; then ingress the same
// way with D's ingress group and S. The rules a packet meets are those of
// the policies selecting its pods, whatever the number of policies
// elsewhere; pods coming and going change peer set elements only.
package model

import (
	"cmp"
	"fmt"
	"net/netip"
)

// ID is a target group or an identity: nonzero, stable for the same content
// (a hash of its canonical key), so a restarted firewalld computes the same
// numbers and writes nothing.
type ID uint32

func (id ID) String() string { return fmt.Sprintf("%08x", uint32(id)) }

// Direction of a policy rule.
type Direction uint8

// The two directions.
const (
	Ingress Direction = iota + 1
	Egress
)

func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Protocol numbers as in the IP header.
const (
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// PortRange is an inclusive range of protocols and ports. A rule port
// "TCP 80" is {6, 6, 80, 80}; "TCP" alone is {6, 6, 0, 65535}; a rule
// without ports is every protocol and port, {0, 255, 0, 65535}.
type PortRange struct {
	ProtoFrom, ProtoTo uint8
	PortFrom, PortTo   uint16
}

// AllTraffic is the range of a rule without ports.
var AllTraffic = PortRange{0, 255, 0, 65535}

func (r PortRange) String() string {
	proto := fmt.Sprintf("%d", r.ProtoFrom)
	if r.ProtoFrom != r.ProtoTo {
		proto = fmt.Sprintf("%d-%d", r.ProtoFrom, r.ProtoTo)
	}
	if r.PortFrom == r.PortTo {
		return fmt.Sprintf("%s/%d", proto, r.PortFrom)
	}
	return fmt.Sprintf("%s/%d-%d", proto, r.PortFrom, r.PortTo)
}

// Compare orders ranges by their fields.
func (r PortRange) Compare(o PortRange) int {
	return cmp.Or(cmp.Compare(r.ProtoFrom, o.ProtoFrom), cmp.Compare(r.ProtoTo, o.ProtoTo),
		cmp.Compare(r.PortFrom, o.PortFrom), cmp.Compare(r.PortTo, o.PortTo))
}

// AnyPeer is the peer of a rule without peers: every address.
const AnyPeer ID = 0

// Rule is one rule of a group chain: traffic of Ports to or from the
// addresses of Peer (AnyPeer: any address) passes.
type Rule struct {
	Peer  ID
	Ports PortRange
}

// Compare orders rules by peer, then ports.
func (r Rule) Compare(o Rule) int {
	return cmp.Or(cmp.Compare(r.Peer, o.Peer), r.Ports.Compare(o.Ports))
}

// GroupKey names a target group's chain.
type GroupKey struct {
	Direction Direction
	ID        ID
}

// PeerElem is an element of a peer set: the addresses From..To (inclusive,
// one family; a pod is one address).
type PeerElem struct {
	Peer     ID
	From, To netip.Addr
}

// Compare orders elements by peer, then addresses.
func (e PeerElem) Compare(o PeerElem) int {
	return cmp.Or(cmp.Compare(e.Peer, o.Peer), e.From.Compare(o.From), e.To.Compare(o.To))
}

// Datapath is everything the table holds besides its fixed skeleton.
// Addresses are of both families; the nftables layer splits them.
type Datapath struct {
	// LocalCIDRs are the node's pod CIDRs. A packet from or to an address
	// inside them that is not in KnownLocal is dropped: a pod firewalld has
	// not seen yet may be one a policy selects (fail closed).
	LocalCIDRs []netip.Prefix
	// KnownLocal are the addresses of the pods on this node that firewalld
	// knows, policed or not.
	KnownLocal map[netip.Addr]struct{}
	// IngressGroup and EgressGroup map the address of every local pod that
	// is isolated in that direction to its target group.
	IngressGroup map[netip.Addr]ID
	EgressGroup  map[netip.Addr]ID
	// Chains are the rules of every target group in use, sorted, without
	// duplicates and with the port ranges of a peer merged (disjoint). A
	// group without rules lets nothing pass.
	Chains map[GroupKey][]Rule
	// PeerElems are the addresses of every peer the rules name. Elements of
	// one peer never overlap.
	PeerElems map[PeerElem]struct{}
}

// NewDatapath returns an empty Datapath with its maps made.
func NewDatapath() *Datapath {
	return &Datapath{
		KnownLocal:   map[netip.Addr]struct{}{},
		IngressGroup: map[netip.Addr]ID{},
		EgressGroup:  map[netip.Addr]ID{},
		Chains:       map[GroupKey][]Rule{},
		PeerElems:    map[PeerElem]struct{}{},
	}
}

// Peers returns the peers the chains name, each once (AnyPeer left out).
func (d *Datapath) Peers() map[ID]struct{} {
	out := map[ID]struct{}{}
	for _, rules := range d.Chains {
		for _, r := range rules {
			if r.Peer != AnyPeer {
				out[r.Peer] = struct{}{}
			}
		}
	}
	return out
}
