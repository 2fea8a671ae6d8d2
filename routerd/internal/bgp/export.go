package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// A router outside the cluster gets only what this node originates (its
// pod CIDRs and the service IPs it serves), never the routes it learned
// from other nodes: BGP passes routes learned over iBGP on to eBGP
// neighbours with this node as the next hop, which would make every node
// look like a way to every pod CIDR and every service IP — an
// externalTrafficPolicy Local IP included, sent to nodes that drop it.
// (kube-router exports the same way.) Nodes still exchange everything
// among themselves: the policy names the external peers in a neighbour
// set, kept equal to them before any of them is added.
const (
	externalSet    = "nodenet-external-peers"
	exportPolicy   = "nodenet-export"
	globalAssignee = "global"
	// neverNeighbour stays in the set: GoBGP takes an empty neighbour set
	// as matching every neighbour (NeighborCondition.Evaluate), which
	// would stop the nodes' routes to every peer, reflection included.
	// No neighbour has the unspecified address.
	neverNeighbour = "0.0.0.0/32"
)

// installExportPolicy sets the export policy up on a new server: the
// neighbour set (empty), the policy and its assignment.
func installExportPolicy(ctx context.Context, srv interface {
	AddDefinedSet(context.Context, *api.AddDefinedSetRequest) error
	AddPolicy(context.Context, *api.AddPolicyRequest) error
	AddPolicyAssignment(context.Context, *api.AddPolicyAssignmentRequest) error
}) error {
	if err := srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_NEIGHBOR, Name: externalSet, List: []string{neverNeighbour}}}); err != nil {
		return fmt.Errorf("neighbour set of the external peers: %w", err)
	}
	external := &api.MatchSet{Type: api.MatchSet_ANY, Name: externalSet}
	policy := &api.Policy{Name: exportPolicy, Statements: []*api.Statement{
		{
			Name:       exportPolicy + "-own",
			Conditions: &api.Conditions{NeighborSet: external, RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
		},
		{
			Name:       exportPolicy + "-learned",
			Conditions: &api.Conditions{NeighborSet: external},
			Actions:    &api.Actions{RouteAction: api.RouteAction_REJECT},
		},
	}}
	if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: policy}); err != nil {
		return fmt.Errorf("export policy: %w", err)
	}
	if err := srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: globalAssignee, Direction: api.PolicyDirection_EXPORT, Policies: []*api.Policy{{Name: exportPolicy}},
		DefaultAction: api.RouteAction_ACCEPT,
	}}); err != nil {
		return fmt.Errorf("export policy assignment: %w", err)
	}
	return nil
}

// externalNeighbours are the entries of the neighbour set for peers.
func externalNeighbours(peers []model.Peer) []string {
	var out []string
	for _, p := range peers {
		if p.Kind == model.ExternalPeer && p.Address.IsValid() {
			out = append(out, netip.PrefixFrom(p.Address, p.Address.BitLen()).String())
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// syncExternalSetLocked makes the neighbour set hold the external peers of
// want, adding before the peers are added and removing after they are
// gone being the caller's order.
func (s *Speaker) syncExternalSetLocked(ctx context.Context, want []string) error {
	var add, del []string
	for _, n := range want {
		if !slices.Contains(s.externalSet, n) {
			add = append(add, n)
		}
	}
	for _, n := range s.externalSet {
		if !slices.Contains(want, n) {
			del = append(del, n)
		}
	}
	if len(add) > 0 {
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
			DefinedType: api.DefinedType_NEIGHBOR, Name: externalSet, List: add}}); err != nil {
			return fmt.Errorf("adding external peers to the export policy: %w", err)
		}
	}
	if len(del) > 0 {
		if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{
			DefinedType: api.DefinedType_NEIGHBOR, Name: externalSet, List: del}}); err != nil {
			return fmt.Errorf("removing external peers from the export policy: %w", err)
		}
	}
	s.externalSet = slices.Clone(want)
	return nil
}
