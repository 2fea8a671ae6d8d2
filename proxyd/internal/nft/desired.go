package nft

import (
	"net/netip"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// Desired is the content of proxyd's table: the elements of its sets, both
// address families together (the sets split them). Build computes it; each
// slice is sorted and free of duplicates, ranges are merged.
type Desired struct {
	// VIPs are every virtual service key: ClusterIPs, externalIPs,
	// LoadBalancer IPs and NodePorts on node addresses (sets vips4/vips6).
	VIPs []model.VSKey
	// LocalVIPs are the keys whose externalTrafficPolicy is Local: their
	// clients keep their address (sets vips_local4/vips_local6).
	LocalVIPs []model.VSKey
	// Restricted are the LoadBalancer keys with loadBalancerSourceRanges
	// (sets lb_restricted4/lb_restricted6).
	Restricted []model.VSKey
	// Allowed are the source ranges of the restricted keys; a restricted
	// key without any lets nobody in (sets lb_allowed4/lb_allowed6).
	Allowed []Allowed
	// PodCIDRs are this node's pod CIDRs (sets pod_cidrs4/pod_cidrs6).
	PodCIDRs []Range
}

// Range is an inclusive range of addresses of one family.
type Range struct {
	From, To netip.Addr
}

func (r Range) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	// A range that is exactly a prefix prints as one, as nft does.
	bits := r.From.BitLen()
	for b := 0; b <= bits; b++ {
		p := netip.PrefixFrom(r.From, b)
		if p.Masked().Addr() == r.From && lastAddr(p) == r.To {
			return p.String()
		}
	}
	return r.From.String() + "-" + r.To.String()
}

// Allowed lets the sources in Sources reach the restricted VIP key.
type Allowed struct {
	VIP     model.VSKey
	Sources Range
}
