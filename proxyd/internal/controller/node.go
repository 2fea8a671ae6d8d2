package controller

import (
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/proxyd/internal/desired"
	corev1 "k8s.io/api/core/v1"
)

// nodeFacts is what proxyd needs of its node.
type nodeFacts struct {
	desired.Node
	PodCIDRs []netip.Prefix
	// FromRouterd: pod CIDRs and node IPs came from routerd's facts.
	FromRouterd bool
}

func (a nodeFacts) equal(b nodeFacts) bool {
	return a.Name == b.Name && a.Zone == b.Zone && slices.Equal(a.IPs, b.IPs) && slices.Equal(a.PodCIDRs, b.PodCIDRs)
}

// nodeInfo takes pod CIDRs and node IPs from routerd while it publishes
// them (DESIGN.md: proxyd learns them from routerd) and from the Node object
// otherwise; the zone always comes from the Node's label.
func nodeInfo(name string, node *corev1.Node, routerd *coord.Facts) nodeFacts {
	nf := nodeFacts{Node: desired.Node{Name: name}}
	if node != nil {
		nf.Zone = node.Labels[corev1.LabelTopologyZone]
	}
	if routerd != nil && routerd.Known && routerd.PodNetwork != nil {
		pn := routerd.PodNetwork
		nf.PodCIDRs = parsePrefixes(pn.GetPodCidrs())
		nf.IPs = parseAddrs(pn.GetNodeIps())
		nf.FromRouterd = true
		return nf
	}
	if node == nil {
		return nf
	}
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
		cidrs = []string{node.Spec.PodCIDR}
	}
	nf.PodCIDRs = parsePrefixes(cidrs)
	var ips []string
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range node.Status.Addresses {
			if a.Type == t {
				ips = append(ips, a.Address)
			}
		}
	}
	nf.IPs = parseAddrs(ips)
	return nf
}

func parsePrefixes(in []string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range in {
		if p, err := netip.ParsePrefix(s); err == nil && !slices.Contains(out, p.Masked()) {
			out = append(out, p.Masked())
		}
	}
	return out
}

func parseAddrs(in []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range in {
		if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(out, a.Unmap()) {
			out = append(out, a.Unmap())
		}
	}
	return out
}
