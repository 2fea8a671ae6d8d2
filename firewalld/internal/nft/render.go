package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// render prints e the way nft lists it: "198.18.128.2",
// "198.18.0.0/16", "198.18.0.10-198.18.0.20",
// "198.18.128.2 : jump in-0000002a".
func (s setSpec) render(e elem) string {
	var out string
	if s.interval {
		out = rangeString([]byte(e.key), []byte(e.end))
	} else {
		out = addrString([]byte(e.key))
	}
	if s.verdicts {
		return out + " : jump " + e.val
	}
	return out
}

func addrString(b []byte) string {
	a, ok := netip.AddrFromSlice(b)
	if !ok {
		return strconv.Quote(string(b)) // not firewalld's encoding
	}
	return a.String()
}

// rangeString prints an address range as nft does: a prefix when it is
// one, one address, or first-last.
func rangeString(from, to []byte) string {
	f, ok1 := netip.AddrFromSlice(from)
	t, ok2 := netip.AddrFromSlice(to)
	if !ok1 || !ok2 || f.BitLen() != t.BitLen() {
		return strconv.Quote(string(from)) + "-" + strconv.Quote(string(to)) // not firewalld's encoding
	}
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

// protocols nft names (those with ports: "tcp dport 80").
var portProtocols = map[uint8]string{model.ProtoTCP: "tcp", model.ProtoUDP: "udp", model.ProtoSCTP: "sctp", 33: "dccp", 136: "udplite"}

// protoName is a protocol as nft prints it after "meta l4proto" (near
// enough: nft names every protocol of /etc/protocols).
func protoName(p uint8) string {
	if n, ok := portProtocols[p]; ok {
		return n
	}
	switch p {
	case 1:
		return "icmp"
	case 58:
		return "ipv6-icmp"
	}
	return strconv.Itoa(int(p))
}

func portsString(from, to uint16) string {
	if from == to {
		return strconv.Itoa(int(from))
	}
	return fmt.Sprintf("%d-%d", from, to)
}

// renderPorts prints the protocol and port match of a rule as nft does
// (empty: no match).
func renderPorts(p model.PortRange) string {
	anyProto := p.ProtoFrom == 0 && p.ProtoTo == 255
	anyPort := p.PortFrom == 0 && p.PortTo == 65535
	ports := portsString(p.PortFrom, p.PortTo)
	switch {
	case anyProto && anyPort:
		return ""
	case anyProto:
		return "th dport " + ports
	case p.ProtoFrom != p.ProtoTo:
		out := fmt.Sprintf("meta l4proto %d-%d", p.ProtoFrom, p.ProtoTo)
		if !anyPort {
			out += " th dport " + ports
		}
		return out
	case anyPort:
		return "meta l4proto " + protoName(p.ProtoFrom)
	}
	if name, ok := portProtocols[p.ProtoFrom]; ok {
		return name + " dport " + ports
	}
	return "meta l4proto " + protoName(p.ProtoFrom) + " th dport " + ports
}

// renderRules prints the rules of group chain k as nft lists them (its
// drop with the counts c).
func (rs *ruleset) renderRules(k model.GroupKey, rules []model.Rule, c Counter) []string {
	out := make([]string, 0, rs.groupRuleCount(rules))
	addr := "saddr"
	if k.Direction == model.Egress {
		addr = "daddr"
	}
	for _, r := range rules {
		ports := renderPorts(r.Ports)
		var matches []string
		if r.Peer == model.AnyPeer {
			matches = []string{ports}
		} else {
			matches = []string{
				fmt.Sprintf("ip %s @%s %s", addr, peerSetName(r.Peer, false), ports),
				fmt.Sprintf("ip6 %s @%s %s", addr, peerSetName(r.Peer, true), ports),
			}
		}
		for _, m := range matches {
			out = append(out, strings.TrimSpace(strings.TrimSpace(m)+" return"))
		}
	}
	if rs.log.enabled() {
		limit := fmt.Sprintf("limit rate %d/second", rs.log.rate)
		if rs.log.burst != defaultLogBurst {
			limit += fmt.Sprintf(" burst %d packets", rs.log.burst)
		}
		out = append(out, fmt.Sprintf("%s log prefix %q group %d", limit, logPrefix(k), rs.log.group))
	}
	return append(out, fmt.Sprintf("counter packets %d bytes %d drop", c.Packets, c.Bytes))
}

// render lists every set's elements as nft prints them, sorted.
func (rs *ruleset) render(c elems) map[string][]string {
	out := make(map[string][]string, len(c))
	for _, s := range rs.sets {
		out[s.name] = []string{}
	}
	for name := range c {
		s, ok := rs.setSpec(name)
		if !ok {
			continue
		}
		lines := make([]string, 0, len(c[name]))
		for _, e := range c.sorted(name) {
			lines = append(lines, s.render(e))
		}
		slices.Sort(lines)
		out[name] = lines
	}
	return out
}
