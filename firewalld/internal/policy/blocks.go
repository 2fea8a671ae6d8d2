package policy

import "net/netip"

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ from, to netip.Addr }

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	b := a.AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	last, _ := netip.AddrFromSlice(b)
	return last
}

// ranges returns the block's addresses: cidr minus except.
func (p *peer) ranges() []addrRange {
	cur, last := p.cidr.Masked().Addr(), lastAddr(p.cidr)
	var out []addrRange
	done := false
	for _, e := range p.except { // sorted by start
		from, to := e.Masked().Addr(), lastAddr(e)
		if to.Compare(cur) < 0 {
			continue // inside an earlier except
		}
		if from.Compare(cur) > 0 {
			out = append(out, addrRange{cur, from.Prev()})
		}
		if to == last {
			done = true
			break
		}
		cur = to.Next()
	}
	if !done {
		out = append(out, addrRange{cur, last})
	}
	return out
}
