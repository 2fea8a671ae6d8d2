// Package model holds firewalld's desired datapath: what the node's one
// nftables table must contain so that packets see the NetworkPolicies in
// force. The policy compiler (package policy) produces it from API objects;
// the nftables layer (package nft) programs it. It is plain data: every
// field is an element set of the table, so a sync is a diff of elements.
//
// # How a packet is judged
//
// A pod's identity is a number derived from what selectors can see of it
// (namespace, namespace labels, pod labels, named ports): pods that look the
// same to every selector share an identity. An address region's identity is
// the same kind of number for the ipBlocks that contain the region. A
// target group is a number for the local pods that the same policies select
// (with the same named ports resolved). A packet from S to D is allowed for
// ingress when D is not in a target group, or when
//
//	group(D) . ident(S) . proto . dport  is in IngressAllow, or
//	group(D) . proto . dport             is in IngressAny (rules without peers)
//
// where ident(S) is PodIdent[S] or, failing that or failing the match, the
// identity of the CIDR region containing S. Egress is the same with the
// roles swapped. The lookups per packet are a constant number whatever the
// count of policies: the policies only change elements.
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

// Allow is an element of IngressAllow/EgressAllow: traffic of Ports between
// the target group and the identity is allowed. Elements of one set never
// overlap (the kernel's concatenated interval sets reject overlaps).
type Allow struct {
	Group ID
	Ident ID
	Ports PortRange
}

// Compare orders elements by group, identity, ports.
func (a Allow) Compare(o Allow) int {
	return cmp.Or(cmp.Compare(a.Group, o.Group), cmp.Compare(a.Ident, o.Ident), a.Ports.Compare(o.Ports))
}

// AnyAllow is an element of IngressAny/EgressAny: a rule without peers,
// traffic of Ports with any address is allowed.
type AnyAllow struct {
	Group ID
	Ports PortRange
}

// Compare orders elements by group, ports.
func (a AnyAllow) Compare(o AnyAllow) int {
	return cmp.Or(cmp.Compare(a.Group, o.Group), a.Ports.Compare(o.Ports))
}

// Region is an element of the region maps: the addresses From..To
// (inclusive, one family) have identity Ident. Regions never overlap.
type Region struct {
	From, To netip.Addr
	Ident    ID
}

// Compare orders regions by their first address.
func (r Region) Compare(o Region) int {
	return cmp.Or(r.From.Compare(o.From), r.To.Compare(o.To), cmp.Compare(r.Ident, o.Ident))
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
	// is isolated in that direction to its target group. An isolated pod
	// gets only what an Allow or AnyAllow element of its group lets in.
	IngressGroup map[netip.Addr]ID
	EgressGroup  map[netip.Addr]ID
	// PodIdent maps pod addresses (every node's) to their identity.
	PodIdent map[netip.Addr]ID
	// Regions map address ranges to the identity of the ipBlocks that
	// contain them; addresses in no region match no ipBlock.
	Regions []Region
	// The allow sets, per direction.
	IngressAllow map[Allow]struct{}
	EgressAllow  map[Allow]struct{}
	IngressAny   map[AnyAllow]struct{}
	EgressAny    map[AnyAllow]struct{}
}

// NewDatapath returns an empty Datapath with its maps made.
func NewDatapath() *Datapath {
	return &Datapath{
		KnownLocal:   map[netip.Addr]struct{}{},
		IngressGroup: map[netip.Addr]ID{},
		EgressGroup:  map[netip.Addr]ID{},
		PodIdent:     map[netip.Addr]ID{},
		IngressAllow: map[Allow]struct{}{},
		EgressAllow:  map[Allow]struct{}{},
		IngressAny:   map[AnyAllow]struct{}{},
		EgressAny:    map[AnyAllow]struct{}{},
	}
}

// Groups returns the target groups of a direction in use, each once.
func (d *Datapath) Groups(dir Direction) map[ID]struct{} {
	m := d.IngressGroup
	if dir == Egress {
		m = d.EgressGroup
	}
	out := make(map[ID]struct{}, len(m))
	for _, g := range m {
		out[g] = struct{}{}
	}
	return out
}
