package egress

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// ipRange is an inclusive range of addresses of one family: one element
// of an interval set as routerd counts them (the kernel stores it as a
// start and an end element).
type ipRange struct {
	first, last netip.Addr
}

func compareRanges(a, b ipRange) int {
	return cmp.Or(a.first.Compare(b.first), a.last.Compare(b.last))
}

// String is the range as nft lists it: a prefix when it is one.
func (r ipRange) String() string {
	if r.first == r.last {
		return r.first.String()
	}
	for bits := 0; bits <= r.first.BitLen(); bits++ {
		p := netip.PrefixFrom(r.first, bits)
		if p.Masked().Addr() == r.first && lastAddr(p) == r.last {
			return p.String()
		}
	}
	return r.first.String() + "-" + r.last.String()
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// content is what the sets hold: set name → disjoint, non-adjacent
// ranges in order. A set without elements has no entry, or an empty one.
type content map[string][]ipRange

// equal reports whether c and o hold the same elements.
func (c content) equal(o content) bool {
	for _, s := range setSpecs() {
		if !slices.Equal(c[s.name], o[s.name]) {
			return false
		}
	}
	return true
}

func (c content) clone() content {
	out := make(content, len(c))
	for name, rs := range c {
		out[name] = slices.Clone(rs)
	}
	return out
}

// build computes the sets' content from d, and returns the prefixes it
// left out because they are invalid (the zero Prefix, IPv4-mapped IPv6).
// A prefix counts as its network (198.18.128.5/24 is 198.18.128.0/24).
// The node's own pod CIDRs are never masqueraded as destinations either.
func build(d Desired) (content, []netip.Prefix) {
	pods4, pods6, skipped := split(d.PodCIDRs)
	cl4, cl6, more := split(d.NoMasquerade)
	c := content{
		setPodCIDRs4:     merge(pods4),
		setPodCIDRs6:     merge(pods6),
		setClusterCIDRs4: merge(append(cl4, pods4...)),
		setClusterCIDRs6: merge(append(cl6, pods6...)),
	}
	return c, append(skipped, more...)
}

// split sorts prefixes into ranges of each family.
func split(ps []netip.Prefix) (v4, v6 []ipRange, skipped []netip.Prefix) {
	for _, p := range ps {
		if !p.IsValid() || p.Addr().Is4In6() {
			skipped = append(skipped, p)
			continue
		}
		r := ipRange{p.Masked().Addr(), lastAddr(p)}
		if p.Addr().Is4() {
			v4 = append(v4, r)
		} else {
			v6 = append(v6, r)
		}
	}
	return v4, v6, skipped
}

// merge sorts ranges and joins those that overlap or touch: an interval
// set takes no overlapping elements, and merged ranges have one form, so
// that what is read back compares equal to what was computed.
func merge(rs []ipRange) []ipRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, compareRanges)
	var out []ipRange
	for _, r := range rs {
		if n := len(out); n > 0 {
			prev := &out[n-1]
			next := prev.last.Next()
			if !next.IsValid() || r.first.Compare(next) <= 0 { // prev reaches the top, or r starts within or right after it
				if r.last.Compare(prev.last) > 0 {
					prev.last = r.last
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// diff returns, per set, the ranges only want has (add) and those only
// have has (del).
func diff(have, want content) (add, del content) {
	add, del = content{}, content{}
	for _, s := range setSpecs() {
		h, w := have[s.name], want[s.name]
		for _, r := range w {
			if _, found := slices.BinarySearchFunc(h, r, compareRanges); !found {
				add[s.name] = append(add[s.name], r)
			}
		}
		for _, r := range h {
			if _, found := slices.BinarySearchFunc(w, r, compareRanges); !found {
				del[s.name] = append(del[s.name], r)
			}
		}
	}
	return add, del
}

// kernelElems are the kernel's elements of the ranges (nftutil's interval
// encoding).
func kernelElems(rs []ipRange) []nftables.SetElement {
	var out []nftables.SetElement
	for _, r := range rs {
		out = append(out, nftutil.IntervalElements(r.first.AsSlice(), r.last.AsSlice(), nil)...)
	}
	return out
}

// kernelCount is the number of kernel elements of the ranges.
func kernelCount(rs []ipRange) int {
	n := 0
	for _, r := range rs {
		n += nftutil.IntervalCount(r.last.AsSlice())
	}
	return n
}

// rangesFromKernel turns the elements of an interval set back into ranges
// (sorted, as merge leaves them); ok is false when an element is not an
// address of the set's family.
func rangesFromKernel(s setSpec, kes []nftables.SetElement) ([]ipRange, bool) {
	var out []ipRange
	for _, iv := range nftutil.Intervals(kes) {
		first, ok1 := netip.AddrFromSlice(iv.First)
		last, ok2 := netip.AddrFromSlice(iv.Last)
		if !ok1 || !ok2 || len(iv.First) != s.keyLen() || len(iv.Last) != s.keyLen() {
			return nil, false
		}
		out = append(out, ipRange{first, last})
	}
	slices.SortFunc(out, compareRanges)
	return out, true
}
