package controller

import (
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/internal/coord"
	corev1 "k8s.io/api/core/v1"
)

// podCIDRs are the node's pod CIDRs: routerd's while it publishes them
// (DESIGN.md: the daemons learn them from routerd), the Node's otherwise.
// Without either, the pending protection has nothing to protect.
func podCIDRs(node *corev1.Node, routerd *coord.Facts) []netip.Prefix {
	var in []string
	switch {
	case routerd != nil && routerd.Known && routerd.PodNetwork != nil:
		in = routerd.PodNetwork.GetPodCidrs()
	case node != nil && len(node.Spec.PodCIDRs) > 0:
		in = node.Spec.PodCIDRs
	case node != nil && node.Spec.PodCIDR != "":
		in = []string{node.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, s := range in {
		if p, err := netip.ParsePrefix(s); err == nil && !slices.Contains(out, p.Masked()) {
			out = append(out, p.Masked())
		}
	}
	return out
}

// nodeAddrs are the addresses the trace takes for this node's own: routerd's
// node IPs while it publishes them, the Node's addresses otherwise, and the
// gateway of each pod CIDR (its first address, the bridge's: routerd's
// convention and the bridge plugin's). The table itself asks the kernel
// (fib saddr type local); these are what firewalld knows of them.
func nodeAddrs(node *corev1.Node, routerd *coord.Facts, cidrs []netip.Prefix) []netip.Addr {
	var in []string
	switch {
	case routerd != nil && routerd.Known && routerd.PodNetwork != nil && len(routerd.PodNetwork.GetNodeIps()) > 0:
		in = routerd.PodNetwork.GetNodeIps()
	case node != nil:
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				in = append(in, a.Address)
			}
		}
	}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, s := range in {
		if a, err := netip.ParseAddr(s); err == nil {
			add(a.Unmap())
		}
	}
	for _, p := range cidrs {
		add(p.Addr().Next()) // podCIDRs are masked
	}
	return out
}
