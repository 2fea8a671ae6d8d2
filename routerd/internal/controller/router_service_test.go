package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/routerd/internal/desired"
	"github.com/nodenet/nodenet/routerd/internal/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// routesHarness is node n0 of the address plan with tunnels on, a route
// found in the kernel at start (198.18.131.0/24, whose node is gone), and
// learned paths of every fate.
func routesHarness(t *testing.T) *harness {
	h := newHarness(t, func(h *harness, cfg *Config) {
		cfg.Tunnel = string(desired.TunnelIPIP)
		h.routes.installed = []model.Route{{Prefix: pfx("198.18.131.0/24"), NextHop: ip("198.18.0.13")}}
	})
	h.speaker.paths = []model.Path{
		{Prefix: pfx("198.18.129.0/24"), NextHop: ip("198.18.0.11"), Peer: ip("198.18.0.11")},
		{Prefix: pfx("198.18.130.0/24"), NextHop: ip("198.18.1.12"), Peer: ip("198.18.1.12")},
		{Prefix: pfx("198.19.0.5/32"), NextHop: ip("198.18.0.11"), Peer: ip("198.18.0.11")},
		{Prefix: pfx("198.18.201.0/24"), NextHop: ip("198.18.7.1"), Peer: ip("198.18.0.1")},
	}
	h.speaker.states = []model.PeerState{
		{Peer: model.Peer{Name: "n1", Address: ip("198.18.0.11"), ASN: 64512, Kind: model.NodePeer}, State: "established", GracefulRestart: true, EndOfRIB: true, Received: 2, Accepted: 2},
		{Peer: model.Peer{Name: "n2", Address: ip("198.18.1.12"), ASN: 64512, Kind: model.NodePeer}, State: "established", GracefulRestart: true, Received: 1, Accepted: 1},
		{Peer: model.Peer{Name: "198.18.0.1", Address: ip("198.18.0.1"), ASN: 64500, Kind: model.ExternalPeer}, State: "active"},
	}
	h.sync()
	return h
}

// rows renders learned routes as "prefix next-hop peer via link installed code".
func rows(lrs []*nodev1.LearnedRoute) []string {
	var out []string
	for _, r := range lrs {
		out = append(out, strings.Join([]string{r.GetPrefix(), r.GetNextHop(), r.GetPeer(), r.GetVia(), r.GetLink(),
			fmt.Sprint(r.GetInstalled()), r.GetReason().GetCode()}, " "))
	}
	return out
}

func TestRoutesShowsEveryPathsFate(t *testing.T) {
	h := routesHarness(t)
	srv := routerServer{c: h.c}
	resp, err := srv.Routes(context.Background(), &nodev1.RouterServiceRoutesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"198.18.129.0/24 198.18.0.11 n1 direct eth0 true Routed",
		"198.18.130.0/24 198.18.1.12 n2 ipip nnip-c612010c true Routed",
		// Found at start, kept: the peers are not all in yet (n2 sent no
		// End-of-RIB).
		"198.18.131.0/24 198.18.0.13  direct eth0 true Kept",
		"198.18.201.0/24 198.18.7.1 198.18.0.1   false NextHopNotConnected",
		"198.19.0.5/32 198.18.0.11 n1   false NotPodCIDR",
	}
	if got := rows(resp.GetLearned()); !slices.Equal(got, want) {
		t.Errorf("learned:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := resp.GetSync(); s.GetNodeName() != "n0" || s.GetGeneration() != 1 || s.GetError() != "" || s.GetInitialSyncDone() {
		t.Errorf("sync %+v", s)
	}
	var adverts []string
	for _, a := range resp.GetAdvertised() {
		adverts = append(adverts, a.GetPrefix()+" "+a.GetNextHop())
	}
	if !slices.Equal(adverts, []string{"198.18.128.0/24 198.18.0.10"}) {
		t.Errorf("advertised %q", adverts)
	}

	// The kernel changes behind routerd's back: a route goes, a stray one
	// comes. The answer says so; the view of the sync is unchanged.
	h.routes.installed = []model.Route{
		{Prefix: pfx("198.18.130.0/24"), NextHop: ip("198.18.1.12"), Tunnel: "nnip-c612010c"},
		{Prefix: pfx("198.18.131.0/24"), NextHop: ip("198.18.0.13")},
		{Prefix: pfx("198.18.150.0/24"), NextHop: ip("198.18.0.99")},
	}
	resp, err = srv.Routes(context.Background(), &nodev1.RouterServiceRoutesRequest{Prefix: "198.18.128.0/18"})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"198.18.129.0/24 198.18.0.11 n1 direct eth0 false Routed",
		"198.18.130.0/24 198.18.1.12 n2 ipip nnip-c612010c true Routed",
		"198.18.131.0/24 198.18.0.13  direct eth0 true Kept",
		"198.18.150.0/24 198.18.0.99  direct eth0 true NotWanted",
	}
	if got := rows(resp.GetLearned()); !slices.Equal(got, want) {
		t.Errorf("filtered, after the kernel changed:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// An address filter: the routes that hold it.
	resp, err = srv.Routes(context.Background(), &nodev1.RouterServiceRoutesRequest{Prefix: "198.19.0.5"})
	if err != nil || len(resp.GetLearned()) != 1 || resp.GetLearned()[0].GetPrefix() != "198.19.0.5/32" || len(resp.GetAdvertised()) != 0 {
		t.Errorf("filter 198.19.0.5: %v %v", rows(resp.GetLearned()), err)
	}
	for _, bad := range []string{"198.18.0", "198.18.0.0/33", "fe80::1%eth0", "nonsense"} {
		_, err := srv.Routes(context.Background(), &nodev1.RouterServiceRoutesRequest{Prefix: bad})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("filter %q: %v, want InvalidArgument", bad, err)
		}
	}
}

func TestPeersCountWhatBecameOfTheirPaths(t *testing.T) {
	h := routesHarness(t)
	resp, err := routerServer{c: h.c}.Peers(context.Background(), &nodev1.RouterServicePeersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range resp.GetPeers() {
		s := p.GetSession()
		got = append(got, fmt.Sprintf("%s %s %s best=%d routed=%d installed=%d skipped=%d gr=%v", s.GetName(), s.GetKind(), s.GetState(),
			p.GetBestPaths(), p.GetRouted(), p.GetInstalled(), p.GetSkipped(), s.GetGracefulRestart()))
	}
	want := []string{
		"198.18.0.1 external active best=1 routed=0 installed=0 skipped=1 gr=false",
		"n1 node established best=2 routed=1 installed=1 skipped=0 gr=true",
		"n2 node established best=1 routed=1 installed=1 skipped=0 gr=true",
	}
	if !slices.Equal(got, want) {
		t.Errorf("peers:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if resp.GetSync().GetGeneration() != 1 {
		t.Errorf("sync %+v", resp.GetSync())
	}
}
