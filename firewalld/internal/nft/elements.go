package nft

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// elem is one element of a set as firewalld counts them, in the kernel's
// encoding (as strings, so that elements are map keys): its key; for
// interval sets the inclusive last key of the range; for maps the value
// (a mark's 4 bytes, or the name of the chain a verdict jumps to).
type elem struct {
	key, end, val string
}

func compareElems(a, b elem) int {
	return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.end, b.end), strings.Compare(a.val, b.val))
}

// elems is what the sets hold: set name → elements.
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
	es := make([]elem, 0, len(c[set]))
	for e := range c[set] {
		es = append(es, e)
	}
	slices.SortFunc(es, compareElems)
	return es
}

// content is the dynamic part of the table: set elements and deny chains.
type content struct {
	elems  elems
	chains map[string]struct{}
}

func newContent() content {
	return content{elems: elems{}, chains: map[string]struct{}{}}
}

// sortedChains returns the deny chains in name order (nil for none).
func (c content) sortedChains() []string {
	var out []string
	for name := range c.chains {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// canonical reports whether a is an address the table can hold: plain
// IPv4 or IPv6, no zone. An IPv4-mapped IPv6 address is skipped rather
// than unmapped: it would collide with the IPv4 address it maps (a map
// key with two values), and no packet carries one.
func canonical(a netip.Addr) bool {
	return a.IsValid() && !a.Is4In6() && a.Zone() == ""
}

func addrFamily(a netip.Addr) family { return newFamily(a.Is6()) }

// mark is id as the group and identity maps hold it (big endian: nft then
// prints it as the id, 0x0000a001 for group 0000a001; nothing compares it
// with a constant, registers only carry it from a map to a lookup).
func mark(id model.ID) []byte { return binary.BigEndian.AppendUint32(nil, uint32(id)) }

// appendProtoPort appends the protocol and port fields, each padded to 4.
func appendProtoPort(b []byte, proto uint8, port uint16) []byte {
	b = append(b, proto, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, port)
	return append(b, 0, 0)
}

func validPorts(r model.PortRange) bool {
	return r.ProtoFrom <= r.ProtoTo && r.PortFrom <= r.PortTo
}

// The elements of each kind of the Datapath. ok is false for bad input,
// which the table leaves out.

func knownElem(a netip.Addr) (string, elem, bool) {
	if !canonical(a) {
		return "", elem{}, false
	}
	return addrFamily(a).known, elem{key: string(a.AsSlice())}, true
}

// groupElems are a's elements of the group map and of the deny map of dir.
func groupElems(dir model.Direction, a netip.Addr, g model.ID) (groupSet string, ge elem, denySet string, de elem, ok bool) {
	if !canonical(a) {
		return "", elem{}, "", elem{}, false
	}
	f := addrFamily(a)
	groupSet, denySet = f.ingGroup, f.ingDeny
	if dir == model.Egress {
		groupSet, denySet = f.egGroup, f.egDeny
	}
	key := string(a.AsSlice())
	return groupSet, elem{key: key, val: string(mark(g))}, denySet, elem{key: key, val: denyChainName(dir, g)}, true
}

func identElem(a netip.Addr, id model.ID) (string, elem, bool) {
	if !canonical(a) {
		return "", elem{}, false
	}
	return addrFamily(a).podIdent, elem{key: string(a.AsSlice()), val: string(mark(id))}, true
}

func allowElem(dir model.Direction, a model.Allow) (string, elem, bool) {
	if !validPorts(a.Ports) {
		return "", elem{}, false
	}
	set := setIngressAllow
	if dir == model.Egress {
		set = setEgressAllow
	}
	head := append(mark(a.Group), mark(a.Ident)...)
	return set, elem{
		key: string(appendProtoPort(head, a.Ports.ProtoFrom, a.Ports.PortFrom)),
		end: string(appendProtoPort(slices.Clip(head), a.Ports.ProtoTo, a.Ports.PortTo)),
	}, true
}

func anyElem(dir model.Direction, a model.AnyAllow) (string, elem, bool) {
	if !validPorts(a.Ports) {
		return "", elem{}, false
	}
	set := setIngressAny
	if dir == model.Egress {
		set = setEgressAny
	}
	head := mark(a.Group)
	return set, elem{
		key: string(appendProtoPort(head, a.Ports.ProtoFrom, a.Ports.PortFrom)),
		end: string(appendProtoPort(slices.Clip(head), a.Ports.ProtoTo, a.Ports.PortTo)),
	}, true
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

// regionElems are the elements of region_ident4/6. Regions must not
// overlap (the kernel rejects overlapping intervals): of two that do, the
// one sorting first is kept and the other left out, as are ranges that are
// empty or mix families.
func regionElems(c elems, regions []model.Region) {
	rs := make([]model.Region, 0, len(regions))
	for _, r := range regions {
		if canonical(r.From) && canonical(r.To) && r.From.Is4() == r.To.Is4() && r.From.Compare(r.To) <= 0 {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, model.Region.Compare)
	var prev *model.Region
	for i := range rs {
		r := &rs[i]
		if prev != nil && prev.From.Is4() == r.From.Is4() && r.From.Compare(prev.To) <= 0 {
			continue
		}
		c.add(addrFamily(r.From).regionIdent, elem{key: string(r.From.AsSlice()), end: string(r.To.AsSlice()), val: string(mark(r.Ident))})
		prev = r
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

// encode turns d into the table's content.
func encode(d *model.Datapath) content {
	c := newContent()
	cidrElems(c.elems, d.LocalCIDRs)
	regionElems(c.elems, d.Regions)
	for a := range d.KnownLocal {
		if set, e, ok := knownElem(a); ok {
			c.elems.add(set, e)
		}
	}
	for _, dir := range []model.Direction{model.Ingress, model.Egress} {
		for a, g := range groupMap(d, dir) {
			if gs, ge, ds, de, ok := groupElems(dir, a, g); ok {
				c.elems.add(gs, ge)
				c.elems.add(ds, de)
				c.chains[denyChainName(dir, g)] = struct{}{}
			}
		}
		for a := range allowMap(d, dir) {
			if set, e, ok := allowElem(dir, a); ok {
				c.elems.add(set, e)
			}
		}
		for a := range anyMap(d, dir) {
			if set, e, ok := anyElem(dir, a); ok {
				c.elems.add(set, e)
			}
		}
	}
	for a, id := range d.PodIdent {
		if set, e, ok := identElem(a, id); ok {
			c.elems.add(set, e)
		}
	}
	return c
}

func groupMap(d *model.Datapath, dir model.Direction) map[netip.Addr]model.ID {
	if dir == model.Egress {
		return d.EgressGroup
	}
	return d.IngressGroup
}

func allowMap(d *model.Datapath, dir model.Direction) map[model.Allow]struct{} {
	if dir == model.Egress {
		return d.EgressAllow
	}
	return d.IngressAllow
}

func anyMap(d *model.Datapath, dir model.Direction) map[model.AnyAllow]struct{} {
	if dir == model.Egress {
		return d.EgressAny
	}
	return d.IngressAny
}
