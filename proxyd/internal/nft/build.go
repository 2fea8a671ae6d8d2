package nft

import (
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// Build computes the table's content from proxyd's desired state and this
// node's pod CIDRs. It is pure. Keys the table cannot hold (an invalid
// address, an unknown protocol) are left out: they cannot be IPVS services
// either. IPv4-mapped IPv6 addresses count as IPv4.
func Build(state model.State, podCIDRs []netip.Prefix) Desired {
	type entry struct {
		key model.VSKey
		vs  *model.VirtualService
	}
	entries := make([]entry, 0, len(state.Services))
	for _, vs := range state.Services {
		if vs == nil {
			continue
		}
		if k, ok := normalKey(vs.VSKey); ok {
			entries = append(entries, entry{k, vs})
		}
	}
	// Services come sorted (model.State), so this is cheap; stable, so
	// that of two services with the same key the first one counts.
	byKey := func(a, b entry) int { return a.key.Compare(b.key) }
	if !slices.IsSortedFunc(entries, byKey) {
		slices.SortStableFunc(entries, byKey)
	}

	var d Desired
	d.VIPs = make([]model.VSKey, 0, len(entries))
	for i, e := range entries {
		if i > 0 && entries[i-1].key == e.key {
			continue
		}
		k, vs := e.key, e.vs
		d.VIPs = append(d.VIPs, k)
		if vs.ExternalLocal && vs.Kind.External() {
			d.LocalVIPs = append(d.LocalVIPs, k)
		}
		// loadBalancerSourceRanges restrict the LoadBalancer IPs only, not
		// the NodePorts or the ClusterIP of the same Service (kube-proxy).
		if vs.SourceRestricted && vs.Kind == model.LoadBalancer {
			d.Restricted = append(d.Restricted, k)
			for _, r := range mergeRanges(vs.SourceRanges, k.Addr.Is4()) {
				d.Allowed = append(d.Allowed, Allowed{VIP: k, Sources: r})
			}
		}
	}
	if len(d.VIPs) == 0 {
		d.VIPs = nil
	}
	d.PodCIDRs = append(mergeRanges(podCIDRs, true), mergeRanges(podCIDRs, false)...)
	return d
}

// normalKey returns k as the table holds it, and whether it can.
func normalKey(k model.VSKey) (model.VSKey, bool) {
	if !k.Addr.IsValid() {
		return k, false
	}
	if _, ok := ipProto(k.Proto); !ok {
		return k, false
	}
	k.Addr = k.Addr.Unmap().WithZone("")
	return k, true
}

// ipProto is the IP protocol number of p.
func ipProto(p model.Protocol) (byte, bool) {
	switch p {
	case model.TCP:
		return 6, true
	case model.UDP:
		return 17, true
	case model.SCTP:
		return 132, true
	}
	return 0, false
}

// mergeRanges returns the prefixes of one family (IPv4 when v4) as sorted
// ranges, overlapping and adjacent ones merged: interval sets reject
// overlapping elements.
func mergeRanges(prefixes []netip.Prefix, v4 bool) []Range {
	rs := make([]Range, 0, len(prefixes))
	for _, p := range prefixes {
		p, ok := normalPrefix(p)
		if !ok || p.Addr().Is4() != v4 {
			continue
		}
		rs = append(rs, Range{From: p.Addr(), To: lastAddr(p)})
	}
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b Range) int { return a.From.Compare(b.From) })
	out := rs[:0] // merging in place: out never overtakes r
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			next := last.To.Next() // invalid when last.To is the family's last address
			if !next.IsValid() || r.From.Compare(next) <= 0 {
				if r.To.Compare(last.To) > 0 {
					last.To = r.To
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// normalPrefix masks p and turns an IPv4-mapped prefix into an IPv4 one.
func normalPrefix(p netip.Prefix) (netip.Prefix, bool) {
	if !p.IsValid() {
		return p, false
	}
	a := p.Addr().WithZone("")
	if a.Is4In6() {
		if p.Bits() < 96 {
			return netip.PrefixFrom(a, p.Bits()).Masked(), true
		}
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), true
	}
	return netip.PrefixFrom(a, p.Bits()).Masked(), true
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	if p.Addr().Is4() {
		b := p.Addr().As4()
		for i := p.Bits(); i < 32; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		return netip.AddrFrom4(b)
	}
	b := p.Addr().As16()
	for i := p.Bits(); i < 128; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom16(b)
}
