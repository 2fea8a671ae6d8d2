package desired

import (
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/routerd/internal/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// VIPKind is how a service IP reaches its Service.
type VIPKind uint8

// The kinds of service IP routerd can advertise.
const (
	ClusterIP VIPKind = iota + 1
	ExternalIP
	LoadBalancerIP
)

// VIP is one service IP as proxyd reports it programmed (one per port;
// the same IP appears once per port).
type VIP struct {
	Addr netip.Addr
	Kind VIPKind
	// ExternalTrafficLocal: the Service has externalTrafficPolicy Local.
	ExternalTrafficLocal bool
	// LocalEndpoints: it has ready endpoints on this node.
	LocalEndpoints bool
	Service        string
}

// AdvertInput is what the node's advertisements are computed from.
type AdvertInput struct {
	PodCIDRs []netip.Prefix
	// Which service IPs to advertise.
	ClusterIPs, ExternalIPs, LoadBalancerIPs bool
	// UseProxyd takes the service IPs from ProxydVIPs, those proxyd has
	// programmed. Without proxyd on the node they come from Services and
	// EndpointSlices instead (without the proof that they are served).
	UseProxyd  bool
	ProxydVIPs []VIP
	// The API objects of the fallback, and this node's name.
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
	Node     string
}

// Advertisements are the prefixes this node announces: its pod CIDRs,
// and the service IPs asked for as host routes (/32, /128) — a VIP of an
// externalTrafficPolicy Local Service (external or load-balancer IP) only
// while the node has a ready endpoint of it, so that routers send its
// traffic only to nodes that keep the client's address and can serve it.
func Advertisements(in AdvertInput) ([]model.Advertisement, []Problem) {
	var out []model.Advertisement
	for _, p := range in.PodCIDRs {
		out = append(out, model.Advertisement{Prefix: p, Why: "pod CIDR"})
	}
	var vips []VIP
	var ps []Problem
	if in.UseProxyd {
		vips = in.ProxydVIPs
	} else {
		vips, ps = vipsFromAPI(in.Services, in.Slices, in.Node)
	}
	seen := map[netip.Addr]bool{}
	for _, v := range vips {
		if !v.Addr.IsValid() || seen[v.Addr] || !in.wants(v.Kind) {
			continue
		}
		if v.ExternalTrafficLocal && v.Kind != ClusterIP && !v.LocalEndpoints {
			continue
		}
		seen[v.Addr] = true
		out = append(out, model.Advertisement{Prefix: netip.PrefixFrom(v.Addr, v.Addr.BitLen()), Why: v.Kind.String() + " of " + v.Service})
	}
	slices.SortFunc(out, func(a, b model.Advertisement) int { return model.ComparePrefix(a.Prefix, b.Prefix) })
	return out, ps
}

func (in AdvertInput) wants(k VIPKind) bool {
	switch k {
	case ClusterIP:
		return in.ClusterIPs
	case ExternalIP:
		return in.ExternalIPs
	case LoadBalancerIP:
		return in.LoadBalancerIPs
	}
	return false
}

func (k VIPKind) String() string {
	switch k {
	case ClusterIP:
		return "ClusterIP"
	case ExternalIP:
		return "external IP"
	case LoadBalancerIP:
		return "load-balancer IP"
	}
	return "VIP"
}
