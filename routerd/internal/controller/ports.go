package controller

import (
	"context"
	"net/netip"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// The loop's view of the parts it drives; app adapts the real packages
// (bgp, routes, egress, podnet) to them and the tests use fakes.

// Speaker is the node's BGP speaker (package bgp).
type Speaker interface {
	// Start (re)starts the speaker with g.
	Start(ctx context.Context, g model.Global) error
	SetPeers(ctx context.Context, peers []model.Peer) error
	SetAdvertisements(ctx context.Context, adverts []model.Advertisement, nextHop netip.Addr) error
	// Paths are the best paths learned from peers.
	Paths() []model.Path
	// Changes is signalled when paths or peer states change.
	Changes() <-chan struct{}
	Peers(ctx context.Context) ([]model.PeerState, error)
}

// RouteTable is the kernel's routes and tunnels that routerd owns
// (package routes).
type RouteTable interface {
	// Apply makes the kernel hold exactly these routes and tunnels of
	// routerd's; full reads the kernel first. It returns the number of
	// changes written.
	Apply(routes []model.Route, tunnels []model.Tunnel, full bool) (writes int, err error)
	// Installed lists routerd's routes in the kernel now.
	Installed() ([]model.Route, error)
}

// Masquerade is the pod egress masquerade table (package egress).
type Masquerade interface {
	// Apply masquerades traffic from podCIDRs to anything outside
	// noMasquerade; full reads the kernel first. Disabled: podCIDRs nil.
	Apply(podCIDRs, noMasquerade []netip.Prefix, full bool) (writes int, err error)
}

// PodNetwork is the node's bridge, links and CNI config (package podnet).
type PodNetwork interface {
	// BridgeExists says whether the bridge is there (it is not after a
	// boot: nothing of the pod network survives one).
	BridgeExists() (bool, error)
	// EnsureBridge makes the bridge exist, up, with the MTU and the
	// gateway address of each pod CIDR.
	EnsureBridge(cidrs []netip.Prefix, mtu int) (changed bool, err error)
	// Subnets are the subnets of the node's links (not the bridge's
	// nor routerd's tunnels'): next hops in them are reached directly.
	Subnets() ([]model.Subnet, error)
	// LinkMTU is the MTU of the link holding ip.
	LinkMTU(ip netip.Addr) (int, error)
	// CNIPodCIDRs are the pod CIDRs named by the CNI config on the node.
	CNIPodCIDRs() ([]netip.Prefix, error)
	// WriteCNIConfig writes routerd's conflist for cidrs and mtu (no
	// write when the file holds it already).
	WriteCNIConfig(cidrs []netip.Prefix, mtu int) (changed bool, err error)
	// RemoveCNIConfig removes routerd's conflist (missing is fine).
	RemoveCNIConfig() error
}
