package nft

import (
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// The methods below answer what the table's rules (rules.go, doc.go) do
// with the first packet of a connection, from the table's content alone:
// `proxyd trace` asks them, and they are what the kernel is programmed with.
// Keys and addresses are taken as the table holds them (IPv4-mapped as
// IPv4).

// Drops reports whether the loadBalancerSourceRanges rule drops a packet
// from src to key: key is restricted and src is in none of its ranges.
func (d Desired) Drops(key model.VSKey, src netip.Addr) bool {
	key, ok := normalKey(key)
	if !ok || !hasKey(d.Restricted, key) {
		return false
	}
	src = src.Unmap()
	for _, a := range d.Allowed {
		if a.VIP == key && a.Sources.contains(src) {
			return false
		}
	}
	return true
}

// Masquerades reports whether a packet from src to key that IPVS sends to
// dst leaves masqueraded, and which mark decided it: MasqueradeMark (a
// client outside the pod CIDRs, to a VIP that does not keep client
// addresses), HairpinMark (a local pod, to a local pod), or 0 (neither).
func (d Desired) Masquerades(key model.VSKey, src, dst netip.Addr) (bool, uint32) {
	key, ok := normalKey(key)
	if !ok || !hasKey(d.VIPs, key) {
		return false, 0
	}
	src, dst = src.Unmap(), dst.Unmap()
	fromPod := d.InPodCIDRs(src)
	if !fromPod && !hasKey(d.LocalVIPs, key) {
		return true, MasqueradeMark
	}
	if fromPod && d.InPodCIDRs(dst) {
		return true, HairpinMark
	}
	return false, 0
}

// InPodCIDRs reports whether a is in this node's pod CIDRs.
func (d Desired) InPodCIDRs(a netip.Addr) bool {
	a = a.Unmap()
	return slices.ContainsFunc(d.PodCIDRs, func(r Range) bool { return r.contains(a) })
}

func hasKey(keys []model.VSKey, k model.VSKey) bool {
	_, found := slices.BinarySearchFunc(keys, k, model.VSKey.Compare)
	return found
}

func (r Range) contains(a netip.Addr) bool {
	return a.BitLen() == r.From.BitLen() && r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}
