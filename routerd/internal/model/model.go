// Package model holds routerd's desired-state values in its own types: the
// BGP peers and advertisements of the node, the routes and tunnels its
// kernel should have, and what the speaker reports back. The desired-state
// functions produce them from API objects and node facts; the BGP and
// kernel adapters convert at their boundary.
package model

import (
	"cmp"
	"fmt"
	"net/netip"
	"time"
)

// Peer is one BGP neighbour of this node's speaker.
type Peer struct {
	// Address is the neighbour's address; it identifies the peer.
	Address netip.Addr
	// ASN is the neighbour's AS (equal to the local one: iBGP).
	ASN uint32
	// Port is the neighbour's TCP port (0: 179).
	Port uint16
	// Password is the TCP MD5 password ("" for none).
	Password string
	// HoldTime is the proposed hold time (0: the speaker's default, 90 s).
	HoldTime time.Duration
	// Multihop is the TTL of an eBGP multihop session (0: directly
	// connected, TTL 1 for eBGP).
	Multihop uint8
	// RRClient says the neighbour is a route-reflector client of this
	// node (this node is a reflector, ClusterID set on the Global).
	RRClient bool
	// Kind says where the peer comes from.
	Kind PeerKind
	// Name names the peer for people: the node's name for a node, the
	// address otherwise.
	Name string
}

// PeerKind says where a peer comes from.
type PeerKind uint8

// The kinds of peer.
const (
	// NodePeer is another node of the cluster (full mesh or reflector).
	NodePeer PeerKind = iota + 1
	// ExternalPeer is a router outside the cluster (flags, annotation).
	ExternalPeer
)

func (k PeerKind) String() string {
	switch k {
	case NodePeer:
		return "node"
	case ExternalPeer:
		return "external"
	}
	return fmt.Sprintf("PeerKind(%d)", uint8(k))
}

// Global is the speaker's own configuration.
type Global struct {
	// RouterID is the node IP (IPv4).
	RouterID netip.Addr
	// ASN is the local AS.
	ASN uint32
	// ListenPort is the TCP port the speaker listens on (179; -1: does
	// not listen, it only dials).
	ListenPort int32
	// ListenAddresses restricts the listener (empty: all addresses).
	ListenAddresses []netip.Addr
	// ClusterID is set when this node is a route reflector.
	ClusterID netip.Addr
	// GracefulRestart is how long peers keep this node's routes while it
	// restarts (0: graceful restart off).
	GracefulRestart time.Duration
	// IPv6 configures the IPv6 unicast family on every session (the
	// cluster has IPv6 pod CIDRs); IPv4 unicast always is. A family is
	// configured only when used: GoBGP v3 sends an End-of-RIB for every
	// configured family, negotiated or not, which other routers log or
	// may refuse.
	IPv6 bool
}

// Advertisement is a prefix this node announces, with itself as the next
// hop.
type Advertisement struct {
	Prefix netip.Prefix
	// Why says what the prefix is (pod CIDR, service VIP) for status.
	Why string
}

// Path is a best path the speaker learned from a peer.
type Path struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	// Peer is the address of the neighbour it came from.
	Peer netip.Addr
}

// Route is a kernel route routerd wants: Prefix through NextHop, either
// directly (the next hop is on a subnet of one of the node's links) or
// through Tunnel (the name of an IPIP link to the next hop).
type Route struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	// Tunnel is the tunnel link's name; "" for a direct route.
	Tunnel string
}

func (r Route) String() string {
	if r.Tunnel != "" {
		return fmt.Sprintf("%s dev %s (to %s)", r.Prefix, r.Tunnel, r.NextHop)
	}
	return fmt.Sprintf("%s via %s", r.Prefix, r.NextHop)
}

// ComparePrefix orders prefixes by address (IPv4 first), then length:
// the order of routerd's lists.
func ComparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// Subnet is a subnet of one of the node's links: next hops in it are
// reached directly, through Link.
type Subnet struct {
	Prefix netip.Prefix
	Link   string
}

// Tunnel is an IPIP link from this node to a remote node.
type Tunnel struct {
	// Name is the link's name (TunnelName of Remote).
	Name   string
	Local  netip.Addr
	Remote netip.Addr
	MTU    int
}

// PeerState is what the speaker reports about a peer.
type PeerState struct {
	Peer
	// State is the session state in BGP's words (idle, connect, active,
	// opensent, openconfirm, established).
	State string
	// Since is when the session entered State.
	Since time.Time
	// Received and Accepted count the prefixes the peer sent and the
	// ones kept; Advertised those sent to it.
	Received, Accepted, Advertised uint64
	// GracefulRestart says the peer negotiated graceful restart.
	GracefulRestart bool
	// EndOfRIB says the peer sent its End-of-RIB marker since the
	// session came up (its initial routes are all in).
	EndOfRIB bool
}

// Established says the session is up.
func (p PeerState) Established() bool { return p.State == "established" }

// TunnelName is the name of routerd's IPIP link to remote: "nnip-" and
// the address in hex, within the kernel's 15 bytes, the same on every
// run (a restart adopts the links it made).
func TunnelName(remote netip.Addr) string {
	b := remote.As4()
	return fmt.Sprintf("%s%02x%02x%02x%02x", TunnelPrefix, b[0], b[1], b[2], b[3])
}

// TunnelPrefix starts the name of every link routerd owns.
const TunnelPrefix = "nnip-"
