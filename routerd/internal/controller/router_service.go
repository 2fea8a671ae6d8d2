package controller

import (
	"cmp"
	"context"
	"net/netip"
	"slices"
	"strings"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/routerd/internal/desired"
	"github.com/nodenet/nodenet/routerd/internal/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Reason codes of a learned route that are not desired.Skip* codes.
const (
	reasonRouted    = "Routed"
	reasonKept      = "Kept"
	reasonNotWanted = "NotWanted"
)

var _ daemon.GRPCServer = (*Controller)(nil)

// RegisterServices is part of daemon.GRPCServer: routerd serves its
// routing table and neighbours.
func (c *Controller) RegisterServices(s grpc.ServiceRegistrar) {
	nodev1.RegisterRouterServiceServer(s, routerServer{c: c})
}

type routerServer struct {
	nodev1.UnimplementedRouterServiceServer
	c *Controller
}

// table is the last sync's view with the kernel's routes of routerd now.
type table struct {
	v         view
	installed map[model.Route]bool
	// names are the neighbours' names by address.
	names map[netip.Addr]string
	node  string
}

// table reads the view under the sync lock (an answer waits for a sync
// that runs), then the kernel.
func (c *Controller) table() (table, error) {
	c.syncMu.Lock()
	t := table{v: c.state.view, node: c.deps.Config.NodeName}
	c.syncMu.Unlock()
	routes, err := c.k.Routes.Installed()
	if err != nil {
		return t, status.Errorf(codes.Unavailable, "reading routerd's routes in the kernel: %v", err)
	}
	t.installed = make(map[model.Route]bool, len(routes))
	for _, r := range routes {
		t.installed[r] = true
	}
	return t, nil
}

func (t table) sync() *nodev1.RouterSync {
	s := &nodev1.RouterSync{NodeName: t.node, Generation: t.v.generation, Error: t.v.err, InitialSyncDone: t.v.initialDone}
	if !t.v.at.IsZero() {
		s.Time = timestamppb.New(t.v.at)
	}
	return s
}

func (t table) peerName(a netip.Addr) string {
	if n, ok := t.names[a]; ok {
		return n
	}
	if a.IsValid() {
		return a.String()
	}
	return ""
}

// learnedRoute is an entry of the answer with its prefix, to filter and
// sort by.
type learnedRoute struct {
	prefix netip.Prefix
	lr     *nodev1.LearnedRoute
}

// learned lists every path's fate, the kept routes and the kernel's
// routes nothing wants, in the view's words.
func (t table) learned() []learnedRoute {
	var out []learnedRoute
	wanted := map[model.Route]bool{}
	route := func(r model.Route, peer netip.Addr, code, msg string) {
		wanted[r] = true
		lr := &nodev1.LearnedRoute{Prefix: r.Prefix.String(), NextHop: r.NextHop.String(), Via: "direct", Link: r.Tunnel,
			Installed: t.installed[r], Reason: &nodev1.TraceReason{Code: code, Message: msg}}
		if r.Tunnel != "" {
			lr.Via = "ipip"
		} else {
			lr.Link = t.v.linkOf(r.NextHop)
		}
		if peer.IsValid() {
			lr.Peer, lr.PeerAddress = t.peerName(peer), peer.String()
		}
		out = append(out, learnedRoute{r.Prefix, lr})
	}
	// Index the paths once: thousands of routes.
	byRoute := make(map[model.Route]netip.Addr, len(t.v.paths))
	for _, p := range t.v.paths {
		byRoute[model.Route{Prefix: p.Prefix, NextHop: p.NextHop}] = p.Peer
	}
	for _, r := range t.v.routes.Routes {
		route(r, byRoute[model.Route{Prefix: r.Prefix, NextHop: r.NextHop}], reasonRouted, "a kernel route, from the best path")
	}
	for _, r := range t.v.kept {
		route(r, netip.Addr{}, reasonKept, "found in the kernel at start; kept until the peers have sent their routes")
	}
	for _, group := range [][]desired.Skipped{t.v.routes.Skipped, t.v.routes.Foreign} {
		for _, sk := range group {
			out = append(out, learnedRoute{sk.Path.Prefix, &nodev1.LearnedRoute{Prefix: sk.Path.Prefix.String(), NextHop: addrString(sk.Path.NextHop),
				Peer: t.peerName(sk.Path.Peer), PeerAddress: addrString(sk.Path.Peer), Reason: &nodev1.TraceReason{Code: sk.Code, Message: sk.Why}}})
		}
	}
	for r := range t.installed {
		if !wanted[r] {
			route(r, netip.Addr{}, reasonNotWanted, "in the kernel, wanted by no path: the next sync removes it")
		}
	}
	return out
}

func addrString(a netip.Addr) string {
	if a.IsValid() {
		return a.String()
	}
	return ""
}

// Routes is part of nodev1.RouterServiceServer.
func (s routerServer) Routes(ctx context.Context, req *nodev1.RouterServiceRoutesRequest) (*nodev1.RouterServiceRoutesResponse, error) {
	filter, err := parseFilter(req.GetPrefix())
	if err != nil {
		return nil, err
	}
	t, err := s.c.table()
	if err != nil {
		return nil, err
	}
	t.names = s.c.peerNames(ctx)
	resp := &nodev1.RouterServiceRoutesResponse{Sync: t.sync()}
	keep := func(p netip.Prefix) bool { return !filter.IsValid() || p.Overlaps(filter) }
	learned := slices.DeleteFunc(t.learned(), func(l learnedRoute) bool { return !keep(l.prefix) })
	slices.SortFunc(learned, func(a, b learnedRoute) int {
		return cmp.Or(model.ComparePrefix(a.prefix, b.prefix), strings.Compare(a.lr.GetNextHop(), b.lr.GetNextHop()),
			strings.Compare(a.lr.GetReason().GetCode(), b.lr.GetReason().GetCode()))
	})
	for _, l := range learned {
		resp.Learned = append(resp.Learned, l.lr)
	}
	adverts := slices.DeleteFunc(slices.Clone(t.v.adverts), func(a model.Advertisement) bool { return !keep(a.Prefix) })
	slices.SortFunc(adverts, func(a, b model.Advertisement) int { return model.ComparePrefix(a.Prefix, b.Prefix) })
	for _, a := range adverts {
		resp.Advertised = append(resp.Advertised, &nodev1.AdvertisedRoute{Prefix: a.Prefix.String(), NextHop: addrString(t.v.nextHop), What: a.Why})
	}
	return resp, nil
}

// Peers is part of nodev1.RouterServiceServer.
func (s routerServer) Peers(ctx context.Context, _ *nodev1.RouterServicePeersRequest) (*nodev1.RouterServicePeersResponse, error) {
	states, err := s.c.k.Speaker.Peers(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "the BGP speaker's neighbours: %v", err)
	}
	t, err := s.c.table()
	if err != nil {
		return nil, err
	}
	type tally struct{ best, routed, installed, skipped uint64 }
	by := map[netip.Addr]*tally{}
	get := func(a netip.Addr) *tally {
		if by[a] == nil {
			by[a] = &tally{}
		}
		return by[a]
	}
	// The route each path became, by prefix and next hop.
	routeOf := make(map[model.Route]model.Route, len(t.v.routes.Routes))
	for _, r := range t.v.routes.Routes {
		routeOf[model.Route{Prefix: r.Prefix, NextHop: r.NextHop}] = r
	}
	for _, p := range t.v.paths {
		n := get(p.Peer)
		n.best++
		if r, ok := routeOf[model.Route{Prefix: p.Prefix, NextHop: p.NextHop}]; ok {
			n.routed++
			if t.installed[r] {
				n.installed++
			}
		}
	}
	for _, sk := range t.v.routes.Skipped {
		get(sk.Path.Peer).skipped++
	}
	resp := &nodev1.RouterServicePeersResponse{Sync: t.sync(), Time: timestamppb.New(s.c.now())}
	for _, st := range states {
		n := get(st.Address)
		resp.Peers = append(resp.Peers, &nodev1.RouterPeer{Session: bgpPeerProto(st), BestPaths: n.best, Routed: n.routed,
			Installed: n.installed, Skipped: n.skipped})
	}
	slices.SortFunc(resp.Peers, func(a, b *nodev1.RouterPeer) int {
		return cmp.Or(strings.Compare(a.GetSession().GetName(), b.GetSession().GetName()),
			strings.Compare(a.GetSession().GetAddress(), b.GetSession().GetAddress()))
	})
	return resp, nil
}

// peerNames are the neighbours' names by address; none when the speaker
// cannot say (the routes are shown with addresses).
func (c *Controller) peerNames(ctx context.Context) map[netip.Addr]string {
	states, err := c.k.Speaker.Peers(ctx)
	if err != nil {
		return nil
	}
	names := make(map[netip.Addr]string, len(states))
	for _, s := range states {
		names[s.Address] = s.Name
	}
	return names
}

// parseFilter reads the request's prefix: an address or a prefix; none
// when empty.
func parseFilter(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, status.Errorf(codes.InvalidArgument, "%q is neither an IP address nor a prefix", s)
	}
	return p.Masked(), nil
}
