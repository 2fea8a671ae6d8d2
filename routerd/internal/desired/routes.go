package desired

import (
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/routerd/internal/model"
	corev1 "k8s.io/api/core/v1"
)

// TunnelMode says how pod CIDRs of nodes on other subnets are reached.
type TunnelMode string

// The tunnel modes.
const (
	// TunnelIPIP encapsulates traffic to a node on another subnet in IPIP.
	TunnelIPIP TunnelMode = "ipip"
	// TunnelNone routes only to next hops on a connected subnet; the
	// network between the subnets must route pod CIDRs itself (learned
	// from the nodes through external peers).
	TunnelNone TunnelMode = "none"
)

// ipipOverhead is what an IPIP header takes off the underlay MTU.
const ipipOverhead = 20

// RoutesInput is what the kernel routes are computed from.
type RoutesInput struct {
	Paths []model.Path
	Nodes []*corev1.Node
	// Node is this node's name; LocalIP its IPv4 address (tunnels' local
	// end); OwnPrefixes its pod CIDRs (never routed away).
	Node        string
	LocalIP     netip.Addr
	OwnPrefixes []netip.Prefix
	// Subnets are the subnets of the node's links: a next hop inside one
	// is reached directly.
	Subnets []netip.Prefix
	Tunnel  TunnelMode
	// MTU of the underlay, for the tunnels.
	MTU int
}

// Skipped is a learned path that does not become a route, and why: Code
// is a stable word (one of the Skip* constants), Why a sentence.
type Skipped struct {
	Path model.Path
	Code string
	Why  string
}

// Why a path is no route (Skipped.Code; routerd routes shows them).
const (
	SkipInvalid      = "InvalidPath"
	SkipOwnPodCIDR   = "OwnPodCIDR"
	SkipOtherFamily  = "OtherFamily"
	SkipNotPodCIDR   = "NotPodCIDR"
	SkipNoTunnel     = "NoTunnel"
	SkipNotConnected = "NextHopNotConnected"
)

// RoutesResult is the kernel routes and tunnels the paths become.
type RoutesResult struct {
	Routes  []model.Route
	Tunnels []model.Tunnel
	Skipped []Skipped
	// Foreign are paths from nodes that are not for the kernel: a node's
	// service IPs, announced for the routers outside (every node serves
	// them itself), or a prefix outside its pod CIDRs.
	Foreign []Skipped
}

// Routes turns the best paths into kernel routes. A path from a node
// (its next hop is a node's address) is a route when its prefix lies in
// that node's pod CIDRs (the service IPs nodes advertise are for the
// routers outside: every node serves them itself); directly when the next
// hop is on a connected subnet, through an IPIP tunnel otherwise (mode
// ipip). A path from an external peer is a route when its next hop is on
// a connected subnet. Nothing inside this node's own pod CIDRs is routed
// away.
func Routes(in RoutesInput) RoutesResult {
	type nodeInfo struct {
		name string
		pods []netip.Prefix
	}
	nodes := map[netip.Addr]nodeInfo{}
	for _, n := range in.Nodes {
		if n.Name == in.Node {
			continue
		}
		cidrs, _ := PodCIDRs(n) // reported by the pod CIDR and peer syncs
		for _, ip := range NodeIPs(n) {
			nodes[ip] = nodeInfo{name: n.Name, pods: cidrs}
		}
	}
	var res RoutesResult
	tunnels := map[netip.Addr]bool{}
	for _, p := range in.Paths {
		skip := func(code, why string) { res.Skipped = append(res.Skipped, Skipped{Path: p, Code: code, Why: why}) }
		switch {
		case !p.Prefix.IsValid() || !p.NextHop.IsValid():
			skip(SkipInvalid, "invalid prefix or next hop")
			continue
		case slices.ContainsFunc(in.OwnPrefixes, p.Prefix.Overlaps):
			skip(SkipOwnPodCIDR, "overlaps this node's pod CIDRs")
			continue
		case p.Prefix.Addr().Is4() != p.NextHop.Is4():
			skip(SkipOtherFamily, "next hop of another family")
			continue
		}
		direct := slices.ContainsFunc(in.Subnets, func(s netip.Prefix) bool { return s.Contains(p.NextHop) })
		node, fromNode := nodes[p.NextHop]
		if fromNode && !slices.ContainsFunc(node.pods, func(c netip.Prefix) bool {
			return c.Bits() <= p.Prefix.Bits() && c.Contains(p.Prefix.Addr())
		}) {
			// A node's service IP (or a stale prefix): not for us.
			res.Foreign = append(res.Foreign, Skipped{Path: p, Code: SkipNotPodCIDR,
				Why: "not in the pod CIDRs of node " + node.name + " (a Service IP it announces for the routers outside)"})
			continue
		}
		switch {
		case direct:
			res.Routes = append(res.Routes, model.Route{Prefix: p.Prefix, NextHop: p.NextHop})
		case fromNode && in.Tunnel == TunnelIPIP && p.NextHop.Is4() && in.LocalIP.Is4():
			name := model.TunnelName(p.NextHop)
			res.Routes = append(res.Routes, model.Route{Prefix: p.Prefix, NextHop: p.NextHop, Tunnel: name})
			if !tunnels[p.NextHop] {
				tunnels[p.NextHop] = true
				res.Tunnels = append(res.Tunnels, model.Tunnel{Name: name, Local: in.LocalIP, Remote: p.NextHop, MTU: in.MTU - ipipOverhead})
			}
		case fromNode:
			skip(SkipNoTunnel, "node "+node.name+" is on another subnet and tunnels are off")
		default:
			skip(SkipNotConnected, "next hop is not on a connected subnet")
		}
	}
	slices.SortFunc(res.Routes, func(a, b model.Route) int { return model.ComparePrefix(a.Prefix, b.Prefix) })
	slices.SortFunc(res.Tunnels, func(a, b model.Tunnel) int { return a.Remote.Compare(b.Remote) })
	return res
}
