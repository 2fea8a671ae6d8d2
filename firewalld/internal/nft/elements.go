package nft

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// elem is one element of a set as firewalld counts them, in the kernel's
// encoding (as strings, so that elements are map keys): its key (an
// address); for interval sets the inclusive last address of the range;
// for verdict maps the name of the chain the element jumps to.
type elem struct {
	key, end, val string
}

func compareElems(a, b elem) int {
	return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.end, b.end), strings.Compare(a.val, b.val))
}

// elems is what sets hold: set name → elements.
type elems map[string]map[elem]struct{}

func (c elems) add(set string, e elem) {
	m := c[set]
	if m == nil {
		m = map[elem]struct{}{}
		c[set] = m
	}
	m[e] = struct{}{}
}

func (c elems) count() int {
	n := 0
	for _, m := range c {
		n += len(m)
	}
	return n
}

// sorted returns the elements of set in key order.
func (c elems) sorted(set string) []elem {
	return sortedElems(c[set])
}

func sortedElems(m map[elem]struct{}) []elem {
	es := make([]elem, 0, len(m))
	for e := range m {
		es = append(es, e)
	}
	slices.SortFunc(es, compareElems)
	return es
}

// canonical reports whether a is an address the table can hold: plain
// IPv4 or IPv6, no zone. An IPv4-mapped IPv6 address is skipped rather
// than unmapped: it would collide with the IPv4 address it maps (a map
// key with two values), and no packet carries one.
func canonical(a netip.Addr) bool {
	return a.IsValid() && !a.Is4In6() && a.Zone() == ""
}

func addrFamily(a netip.Addr) family { return newFamily(a.Is6()) }

// validPorts: a range the rules can match (not empty).
func validPorts(r model.PortRange) bool {
	return r.ProtoFrom <= r.ProtoTo && r.PortFrom <= r.PortTo
}

// validPeerElem: a range of one family, not empty.
func validPeerElem(e model.PeerElem) bool {
	return canonical(e.From) && canonical(e.To) && e.From.Is4() == e.To.Is4() && e.From.Compare(e.To) <= 0
}

// The elements of each kind of the Datapath; the input is valid (the
// state has left out the rest).

func knownElem(a netip.Addr) (string, elem) {
	return addrFamily(a).known, elem{key: string(a.AsSlice())}
}

// groupElem is a's element of the verdict map of dir: jump to g's chain.
func groupElem(dir model.Direction, a netip.Addr, g model.ID) (string, elem) {
	return addrFamily(a).groupMap(dir), elem{key: string(a.AsSlice()), val: groupChainName(model.GroupKey{Direction: dir, ID: g})}
}

func peerElem(e model.PeerElem) (string, elem) {
	return peerSetName(e.Peer, e.From.Is6()), elem{key: string(e.From.AsSlice()), end: string(e.To.AsSlice())}
}

// cidrElems are the elements of local_cidrs4/6: the prefixes as ranges,
// overlapping and adjacent ones merged (interval sets reject overlaps).
func cidrElems(c elems, prefixes []netip.Prefix) {
	type span struct{ from, to netip.Addr }
	var spans []span
	for _, p := range prefixes {
		if !p.IsValid() || !canonical(p.Addr()) {
			continue
		}
		p = p.Masked()
		spans = append(spans, span{p.Addr(), lastAddr(p)})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Or(a.from.Compare(b.from), a.to.Compare(b.to)) })
	var merged []span
	for _, s := range spans {
		if n := len(merged); n > 0 && merged[n-1].from.Is4() == s.from.Is4() {
			last := &merged[n-1]
			next := last.to.Next() // invalid when last.to is the family's last address
			if !next.IsValid() || s.from.Compare(next) <= 0 {
				if s.to.Compare(last.to) > 0 {
					last.to = s.to
				}
				continue
			}
		}
		merged = append(merged, s)
	}
	for _, s := range merged {
		c.add(addrFamily(s.from).localCIDRs, elem{key: string(s.from.AsSlice()), end: string(s.to.AsSlice())})
	}
}

// lastAddr is the highest address of p (masked).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
