package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// render prints e the way nft lists it (near enough for tests and dumps):
// "198.18.128.2 : 0x0000002a", "198.18.0.0/16 : 0x00000007",
// "198.18.128.2 : jump deny-in-0000002a",
// "0x0000002a . 0x00000007 . tcp . 8000-8080".
func (s setSpec) render(e elem) string {
	key, end := []byte(e.key), []byte(e.end)
	var out string
	switch s.kind {
	case rangeSet:
		out = rangeString(key, end)
	default:
		var parts []string
		off := 0
		for _, f := range s.fields {
			n := s.fieldLen(f)
			if off+n > len(key) {
				return strconv.Quote(e.key) // not firewalld's encoding
			}
			v := key[off : off+n]
			w := v
			if len(end) >= off+n {
				w = end[off : off+n]
			}
			parts = append(parts, fieldString(f, v, w))
			off += nftutil.Pad4(n)
		}
		out = strings.Join(parts, " . ")
	}
	switch s.data {
	case markData:
		return out + " : " + markString([]byte(e.val))
	case verdictData:
		return out + " : jump " + e.val
	}
	return out
}

// fieldString prints one field of a concatenated key whose range is v..w.
func fieldString(f field, v, w []byte) string {
	one := func(b []byte) string {
		switch f {
		case fieldMark:
			return markString(b)
		case fieldProto:
			return protoName(b[0])
		case fieldPort:
			return strconv.Itoa(int(binary.BigEndian.Uint16(b)))
		}
		a, _ := netip.AddrFromSlice(b)
		return a.String()
	}
	if string(v) == string(w) {
		return one(v)
	}
	if f == fieldAddr {
		return rangeString(v, w)
	}
	return one(v) + "-" + one(w)
}

// markString prints a mark as nft does.
func markString(b []byte) string {
	if len(b) != markBytes {
		return strconv.Quote(string(b)) // not firewalld's encoding
	}
	return fmt.Sprintf("0x%08x", binary.BigEndian.Uint32(b))
}

// rangeString prints an address range as nft does: a prefix when it is
// one, one address, or first-last.
func rangeString(from, to []byte) string {
	f, _ := netip.AddrFromSlice(from)
	t, _ := netip.AddrFromSlice(to)
	if f == t {
		return f.String()
	}
	for b := 0; b <= f.BitLen(); b++ {
		p := netip.PrefixFrom(f, b)
		if p.Masked().Addr() == f && lastAddr(p.Masked()) == t {
			return p.String()
		}
	}
	return f.String() + "-" + t.String()
}

func protoName(p byte) string {
	switch p {
	case model.ProtoTCP:
		return "tcp"
	case model.ProtoUDP:
		return "udp"
	case model.ProtoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// render lists every set's elements as nft prints them, sorted.
func (rs *ruleset) render(c elems) map[string][]string {
	out := make(map[string][]string, len(rs.sets))
	for _, s := range rs.sets {
		lines := []string{}
		for _, e := range c.sorted(s.name) {
			lines = append(lines, s.render(e))
		}
		slices.Sort(lines)
		out[s.name] = lines
	}
	return out
}
