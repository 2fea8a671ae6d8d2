package policy

import (
	"net/netip"
	"slices"
	"strings"
)

// region is a maximal address range whose addresses are in exactly the
// same ipBlock peers.
type region struct {
	from, to netip.Addr
	peers    []*peer
	key      string
}

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

// regionEvent is where a block's range starts, or where it has ended (the
// address after its last).
type regionEvent struct {
	at    netip.Addr
	start bool
	p     *peer
}

// regions partitions the addresses the blocks cover into regions. Addresses
// in no block are in no region.
func regions(blocks []*peer) []region {
	var out []region
	for _, bits := range []int{32, 128} {
		var events []regionEvent
		for _, b := range blocks {
			if b.cidr.Addr().BitLen() != bits {
				continue
			}
			for _, r := range b.ranges() {
				events = append(events, regionEvent{r.from, true, b})
				// A range reaching the family's last address has no end
				// event: it ends with the sweep.
				if r.to != lastAddr(netip.PrefixFrom(r.to, 0)) {
					events = append(events, regionEvent{r.to.Next(), false, b})
				}
			}
		}
		slices.SortFunc(events, func(a, b regionEvent) int { return a.at.Compare(b.at) })
		out = sweep(events, out)
	}
	return out
}

// sweep turns the sorted events of one family into regions appended to out.
func sweep(events []regionEvent, out []region) []region {
	active := map[*peer]int{}
	for i := 0; i < len(events); {
		at := events[i].at
		j := i
		for ; j < len(events) && events[j].at == at; j++ {
			if events[j].start {
				active[events[j].p]++
			} else if active[events[j].p]--; active[events[j].p] == 0 {
				delete(active, events[j].p)
			}
		}
		i = j
		if len(active) == 0 {
			continue
		}
		// The region runs to just before the next event, or to the
		// family's last address.
		to := lastAddr(netip.PrefixFrom(at, 0))
		if j < len(events) {
			to = events[j].at.Prev()
		}
		ps := make([]*peer, 0, len(active))
		for p := range active {
			ps = append(ps, p)
		}
		slices.SortFunc(ps, func(a, b *peer) int { return strings.Compare(a.key, b.key) })
		keys := make([]string, len(ps))
		for k, p := range ps {
			keys[k] = p.key
		}
		key := "region\x00" + strings.Join(keys, "\x01")
		if n := len(out); n > 0 && out[n-1].key == key && out[n-1].to.Next() == at {
			out[n-1].to = to
			continue
		}
		out = append(out, region{from: at, to: to, peers: ps, key: key})
	}
	return out
}
