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
