package desired

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/nodenet/nodenet/routerd/internal/model"
	corev1 "k8s.io/api/core/v1"
)

func TestRoutes(t *testing.T) {
	nodes := []*corev1.Node{
		node("me", "198.18.0.10", "198.18.128.0/24"),
		node("same-subnet", "198.18.0.11", "198.18.129.0/24"),
		node("far", "198.18.1.12", "198.18.130.0/24"),
		node("far2", "198.18.2.13", "198.18.131.0/24"),
	}
	path := func(p, nh string) model.Path {
		return model.Path{Prefix: prefix(p), NextHop: addr(nh), Peer: addr(nh)}
	}
	paths := []model.Path{
		path("198.18.129.0/24", "198.18.0.11"),
		path("198.18.130.0/24", "198.18.1.12"),
		path("198.18.131.0/24", "198.18.2.13"),
		path("198.19.0.5/32", "198.18.0.11"),   // a node's service IP: for routers outside
		path("198.18.129.0/25", "198.18.1.12"), // not far's pod CIDR
		path("198.18.128.0/24", "198.18.0.11"), // this node's own CIDR
		path("198.18.128.0/16", "198.18.0.1"),  // overlaps it
		path("198.18.200.0/24", "198.18.0.1"),  // external, on the subnet
		path("198.18.201.0/24", "198.18.7.1"),  // external, not reachable
		path("2001:2:9::/64", "198.18.0.1"),    // family mismatch
		{Prefix: prefix("198.18.202.0/24")},    // no next hop
	}
	in := RoutesInput{Paths: paths, Nodes: nodes, Node: "me", LocalIP: addr("198.18.0.10"), OwnPrefixes: []netip.Prefix{prefix("198.18.128.0/24")},
		Subnets: []netip.Prefix{prefix("198.18.0.0/24")}, Tunnel: TunnelIPIP, MTU: 1500}
	res := Routes(in)
	wantRoutes := []model.Route{
		{Prefix: prefix("198.18.129.0/24"), NextHop: addr("198.18.0.11")},
		{Prefix: prefix("198.18.130.0/24"), NextHop: addr("198.18.1.12"), Tunnel: "nnip-c612010c"},
		{Prefix: prefix("198.18.131.0/24"), NextHop: addr("198.18.2.13"), Tunnel: "nnip-c612020d"},
		{Prefix: prefix("198.18.200.0/24"), NextHop: addr("198.18.0.1")},
	}
	if !slices.Equal(res.Routes, wantRoutes) {
		t.Errorf("routes\n%v\nwant\n%v", res.Routes, wantRoutes)
	}
	wantTunnels := []model.Tunnel{
		{Name: "nnip-c612010c", Local: addr("198.18.0.10"), Remote: addr("198.18.1.12"), MTU: 1480},
		{Name: "nnip-c612020d", Local: addr("198.18.0.10"), Remote: addr("198.18.2.13"), MTU: 1480},
	}
	if !slices.Equal(res.Tunnels, wantTunnels) {
		t.Errorf("tunnels %+v, want %+v", res.Tunnels, wantTunnels)
	}
	codes := func(sk []Skipped) map[string]string {
		m := map[string]string{}
		for _, s := range sk {
			m[s.Path.Prefix.String()] = s.Code
		}
		return m
	}
	wantSkipped := map[string]string{
		"198.18.128.0/24": SkipOwnPodCIDR, "198.18.128.0/16": SkipOwnPodCIDR, "198.18.201.0/24": SkipNotConnected,
		"2001:2:9::/64": SkipOtherFamily, "198.18.202.0/24": SkipInvalid,
	}
	if got := codes(res.Skipped); !maps.Equal(got, wantSkipped) || len(res.Skipped) != len(wantSkipped) {
		t.Errorf("skipped %v, want %v", got, wantSkipped)
	}
	wantForeign := map[string]string{"198.19.0.5/32": SkipNotPodCIDR, "198.18.129.0/25": SkipNotPodCIDR}
	if got := codes(res.Foreign); !maps.Equal(got, wantForeign) || len(res.Foreign) != len(wantForeign) {
		t.Errorf("foreign %v, want %v", got, wantForeign)
	}

	in.Tunnel = TunnelNone
	res = Routes(in)
	if len(res.Routes) != 2 || len(res.Tunnels) != 0 || len(res.Skipped) != 7 {
		t.Errorf("without tunnels: routes %v, tunnels %v, skipped %d", res.Routes, res.Tunnels, len(res.Skipped))
	}
	if got := codes(res.Skipped); got["198.18.130.0/24"] != SkipNoTunnel || got["198.18.131.0/24"] != SkipNoTunnel {
		t.Errorf("without tunnels, far nodes' CIDRs: %v, want %s", got, SkipNoTunnel)
	}
}

func TestTunnelNameFitsTheKernel(t *testing.T) {
	if n := model.TunnelName(addr("255.255.255.255")); len(n) > 15 {
		t.Errorf("%q is longer than IFNAMSIZ-1", n)
	}
}

func TestLocalPodCIDRs(t *testing.T) {
	n := node("me", "198.18.0.10", "")
	cni := []netip.Prefix{prefix("198.18.128.7/24"), prefix("198.18.129.0/24"), prefix("2001:2:1::/64")}
	got, src, _, err := LocalPodCIDRs(n, cni)
	if err != nil || src != FromCNIConfig || !slices.Equal(got, []netip.Prefix{prefix("198.18.128.0/24"), prefix("2001:2:1::/64")}) {
		t.Errorf("from CNI: %v %v %v", got, src, err)
	}
	n.Spec.PodCIDRs = []string{"198.18.130.0/24", "bad", "198.18.131.0/24"}
	got, src, problems, err := LocalPodCIDRs(n, cni)
	if err != nil || src != FromNodeSpec || !slices.Equal(got, []netip.Prefix{prefix("198.18.130.0/24")}) || len(problems) != 2 {
		t.Errorf("from the spec: %v %v %v %v", got, src, problems, err)
	}
	if _, _, _, err := LocalPodCIDRs(node("me", "198.18.0.10", ""), nil); err == nil {
		t.Error("no pod CIDR anywhere is no error")
	}
}
