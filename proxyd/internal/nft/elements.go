package nft

import (
	"cmp"
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// elem is one element of a set as proxyd counts them: its key and, for
// interval sets, the inclusive last key of the range (kernel encoding, as
// strings so that elements are map keys).
type elem struct {
	key, end string
}

func compareElems(a, b elem) int {
	return cmp.Or(strings.Compare(a.key, b.key), strings.Compare(a.end, b.end))
}

// content is what the sets hold: set name → elements.
type content map[string]map[elem]struct{}

func (c content) add(set string, e elem) {
	m := c[set]
	if m == nil {
		m = map[elem]struct{}{}
		c[set] = m
	}
	m[e] = struct{}{}
}

// sorted returns the elements of set in key order.
func (c content) sorted(set string) []elem {
	es := make([]elem, 0, len(c[set]))
	for e := range c[set] {
		es = append(es, e)
	}
	slices.SortFunc(es, compareElems)
	return es
}

// encode turns d into the elements of the table's sets.
func encode(d Desired) content {
	c := content{}
	for _, k := range d.VIPs {
		c.add(vipElem(k, setVIPs4, setVIPs6))
	}
	for _, k := range d.LocalVIPs {
		c.add(vipElem(k, setLocalVIPs4, setLocalVIPs6))
	}
	for _, k := range d.Restricted {
		c.add(vipElem(k, setRestricted4, setRestricted6))
	}
	for _, a := range d.Allowed {
		if set, e, ok := allowedElem(a); ok {
			c.add(set, e)
		}
	}
	for _, r := range d.PodCIDRs {
		c.add(podElem(r))
	}
	return c
}

// vipElem is k's element in set v4 or v6, by its family.
func vipElem(k model.VSKey, v4, v6 string) (string, elem) {
	return pick(k.Addr, v4, v6), elem{key: string(vipKey(k))}
}

// allowedElem is a's element of lb_allowed4/6; a range of the other
// family than the VIP's has none (it would never match).
func allowedElem(a Allowed) (string, elem, bool) {
	if a.Sources.From.Is4() != a.VIP.Addr.Is4() || a.Sources.To.Is4() != a.VIP.Addr.Is4() {
		return "", elem{}, false
	}
	vk := vipKey(a.VIP)
	return pick(a.VIP.Addr, setAllowed4, setAllowed6), elem{
		key: string(append(slices.Clip(vk), a.Sources.From.AsSlice()...)),
		end: string(append(slices.Clip(vk), a.Sources.To.AsSlice()...)),
	}, true
}

func podElem(r Range) (string, elem) {
	return pick(r.From, setPodCIDRs4, setPodCIDRs6), elem{key: string(r.From.AsSlice()), end: string(r.To.AsSlice())}
}

// delta returns the elements to add and to delete to go from old to new,
// by walking their sorted lists side by side: a sync that changes little
// costs no encoding of what did not change. ok is false when a list is not
// strictly sorted (not as Build returns it); the caller then compares
// whole encodings.
func delta(old, new Desired) (add, del content, ok bool) {
	add, del = content{}, content{}
	vips := func(v4, v6 string) (func(model.VSKey), func(model.VSKey)) {
		return func(k model.VSKey) { add.add(vipElem(k, v4, v6)) },
			func(k model.VSKey) { del.add(vipElem(k, v4, v6)) }
	}
	onAdd, onDel := vips(setVIPs4, setVIPs6)
	ok = diffSorted(old.VIPs, new.VIPs, model.VSKey.Compare, onAdd, onDel)
	onAdd, onDel = vips(setLocalVIPs4, setLocalVIPs6)
	ok = ok && diffSorted(old.LocalVIPs, new.LocalVIPs, model.VSKey.Compare, onAdd, onDel)
	onAdd, onDel = vips(setRestricted4, setRestricted6)
	ok = ok && diffSorted(old.Restricted, new.Restricted, model.VSKey.Compare, onAdd, onDel)
	ok = ok && diffSorted(old.Allowed, new.Allowed, compareAllowed,
		func(a Allowed) {
			if set, e, ok := allowedElem(a); ok {
				add.add(set, e)
			}
		},
		func(a Allowed) {
			if set, e, ok := allowedElem(a); ok {
				del.add(set, e)
			}
		})
	ok = ok && diffSorted(old.PodCIDRs, new.PodCIDRs, compareRanges,
		func(r Range) { add.add(podElem(r)) },
		func(r Range) { del.add(podElem(r)) })
	return add, del, ok
}

func compareRanges(a, b Range) int {
	return cmp.Or(a.From.Compare(b.From), a.To.Compare(b.To))
}

func compareAllowed(a, b Allowed) int {
	return cmp.Or(a.VIP.Compare(b.VIP), compareRanges(a.Sources, b.Sources))
}

// diffSorted walks two strictly sorted lists and reports what only new
// has (onAdd) and what only old has (onDel); false if a list is not
// strictly sorted.
func diffSorted[T any](old, new []T, compare func(T, T) int, onAdd, onDel func(T)) bool {
	strictly := func(s []T) bool {
		for i := 1; i < len(s); i++ {
			if compare(s[i-1], s[i]) >= 0 {
				return false
			}
		}
		return true
	}
	if !strictly(old) || !strictly(new) {
		return false
	}
	i, j := 0, 0
	for i < len(old) || j < len(new) {
		switch {
		case j == len(new) || (i < len(old) && compare(old[i], new[j]) < 0):
			onDel(old[i])
			i++
		case i == len(old) || compare(old[i], new[j]) > 0:
			onAdd(new[j])
			j++
		default:
			i++
			j++
		}
	}
	return true
}

func pick(a netip.Addr, v4, v6 string) string {
	if a.Is4() {
		return v4
	}
	return v6
}

// vipKey is the key of addr . proto . port: each field padded to 4 bytes.
func vipKey(k model.VSKey) []byte {
	proto, _ := ipProto(k.Proto)
	b := k.Addr.AsSlice()
	b = append(b, proto, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, k.Port)
	return append(b, 0, 0)
}

// kernelElems is how the kernel stores es in set s.
func (s setSpec) kernelElems(es []elem) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(es)*2)
	for _, e := range es {
		switch s.kind {
		case hashSet:
			out = append(out, nftables.SetElement{Key: []byte(e.key)})
		case concatRangeSet:
			out = append(out, nftables.SetElement{Key: []byte(e.key), KeyEnd: []byte(e.end)})
		case rangeSet:
			// A start element and an end element one past the range
			// (none when the range reaches the family's last address).
			out = append(out, nftutil.IntervalElements([]byte(e.key), []byte(e.end), nil)...)
		}
	}
	return out
}

// kernelCount is how many kernel elements es take.
func (s setSpec) kernelCount(es []elem) int {
	if s.kind != rangeSet {
		return len(es)
	}
	n := 0
	for _, e := range es {
		n += nftutil.IntervalCount([]byte(e.end))
	}
	return n
}

// fromKernel turns the kernel's elements of set s back into proxyd's.
// For a rangeSet, each start element pairs with the end element after it;
// an end element without a start (nft's sentinel at address zero) is not
// an element of proxyd's.
func (s setSpec) fromKernel(kes []nftables.SetElement) []elem {
	out := make([]elem, 0, len(kes))
	switch s.kind {
	case hashSet:
		for _, k := range kes {
			out = append(out, elem{key: string(k.Key)})
		}
	case concatRangeSet:
		for _, k := range kes {
			end := k.KeyEnd
			if len(end) == 0 {
				end = k.Key
			}
			out = append(out, elem{key: string(k.Key), end: string(end)})
		}
	case rangeSet:
		for _, r := range nftutil.Intervals(kes) {
			out = append(out, elem{key: string(r.First), end: string(r.Last)})
		}
	}
	return out
}

// render prints e the way nft lists it ("198.19.0.10 . tcp . 80",
// "198.18.128.0/24", "198.19.0.30 . tcp . 443 . 198.18.0.0/24").
func (s setSpec) render(e elem) string {
	key, end := []byte(e.key), []byte(e.end)
	if s.kind == rangeSet {
		return rangeOf(key, end).String()
	}
	var parts []string
	off := 0
	for i, f := range s.fields {
		n := s.fieldLen(f)
		if off+n > len(key) {
			return strconv.Quote(e.key) // not proxyd's encoding
		}
		v := key[off : off+n]
		switch f {
		case fieldProto:
			parts = append(parts, protoName(v[0]))
		case fieldPort:
			parts = append(parts, strconv.Itoa(int(binary.BigEndian.Uint16(v))))
		default:
			if s.kind == concatRangeSet && i == len(s.fields)-1 && len(end) >= off+n {
				parts = append(parts, rangeOf(v, end[off:off+n]).String())
			} else {
				a, _ := netip.AddrFromSlice(v)
				parts = append(parts, a.String())
			}
		}
		off += nftutil.Pad4(n)
	}
	return strings.Join(parts, " . ")
}

func rangeOf(from, to []byte) Range {
	f, _ := netip.AddrFromSlice(from)
	t, _ := netip.AddrFromSlice(to)
	return Range{From: f, To: t}
}

func protoName(p byte) string {
	switch p {
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 132:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// render lists every set's elements as nft prints them, sorted.
func (rs *ruleset) render(c content) map[string][]string {
	out := make(map[string][]string, len(rs.sets))
	for _, s := range rs.sets {
		lines := []string{}
		for _, e := range c.sorted(s.name) {
			lines = append(lines, s.render(e))
		}
		out[s.name] = lines
	}
	return out
}
