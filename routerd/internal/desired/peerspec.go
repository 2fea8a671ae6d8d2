package desired

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// PeerSpec is an external BGP peer as an operator writes it (a --peer flag
// or an entry of the nodenet.io/bgp-peers annotation):
//
//	address=198.18.9.1 asn=65000 [port=179] [password-secret=NAME]
//	[hold-time=90s] [multihop=2]
//
// The password is read from key "password" of the Secret NAME in routerd's
// namespace: it never appears in flags or annotations.
type PeerSpec struct {
	Address        netip.Addr
	ASN            uint32
	Port           uint16
	PasswordSecret string
	HoldTime       time.Duration
	Multihop       uint8
}

// ParsePeerSpecs parses entries separated by ';' or new lines; an entry in
// error is left out and its error returned beside the others.
func ParsePeerSpecs(s string) ([]PeerSpec, []error) {
	var out []PeerSpec
	var errs []error
	for _, entry := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		if strings.TrimSpace(entry) == "" {
			continue
		}
		p, err := ParsePeerSpec(entry)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errs
}

// ParsePeerSpec parses one entry: key=value words separated by spaces or
// commas. An unknown key is an error (a typo must not silently drop an
// option such as the password).
func ParsePeerSpec(entry string) (PeerSpec, error) {
	var p PeerSpec
	seen := map[string]bool{}
	for _, word := range strings.FieldsFunc(entry, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		key, value, ok := strings.Cut(word, "=")
		if !ok || value == "" {
			return PeerSpec{}, fmt.Errorf("peer %q: %q is not key=value", entry, word)
		}
		if seen[key] {
			return PeerSpec{}, fmt.Errorf("peer %q: %s given twice", entry, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "address":
			p.Address, err = netip.ParseAddr(value)
			if err == nil && (p.Address.Zone() != "" || p.Address.IsUnspecified() || p.Address.IsMulticast()) {
				err = fmt.Errorf("not a unicast address")
			}
			p.Address = p.Address.Unmap()
		case "asn":
			p.ASN, err = ParseASN(value)
		case "port":
			var n uint64
			n, err = strconv.ParseUint(value, 10, 16)
			if err == nil && n == 0 {
				err = fmt.Errorf("port 0")
			}
			p.Port = uint16(n)
		case "password-secret":
			p.PasswordSecret = value
		case "hold-time":
			p.HoldTime, err = parseHoldTime(value)
		case "multihop":
			var n uint64
			n, err = strconv.ParseUint(value, 10, 8)
			if err == nil && n == 0 {
				err = fmt.Errorf("multihop 0")
			}
			p.Multihop = uint8(n)
		default:
			return PeerSpec{}, fmt.Errorf("peer %q: unknown option %q", entry, key)
		}
		if err != nil {
			return PeerSpec{}, fmt.Errorf("peer %q: %s=%q: %v", entry, key, value, err)
		}
	}
	if !p.Address.IsValid() {
		return PeerSpec{}, fmt.Errorf("peer %q: no address", entry)
	}
	if p.ASN == 0 {
		return PeerSpec{}, fmt.Errorf("peer %q: no asn", entry)
	}
	return p, nil
}

// ParseASN parses a 4-byte AS number, 1 to 4294967294 (0 and 65535 and
// 4294967295 are reserved, RFC 7300); "asdot" 1.10 is accepted too.
func ParseASN(s string) (uint32, error) {
	var n uint64
	var err error
	if hi, lo, ok := strings.Cut(s, "."); ok {
		var h, l uint64
		if h, err = strconv.ParseUint(hi, 10, 16); err == nil {
			if l, err = strconv.ParseUint(lo, 10, 16); err == nil {
				n = h<<16 | l
			}
		}
	} else {
		n, err = strconv.ParseUint(s, 10, 32)
	}
	if err != nil {
		return 0, fmt.Errorf("not an AS number: %q", s)
	}
	if n == 0 || n == 65535 || n == 1<<32-1 {
		return 0, fmt.Errorf("reserved AS number %d", n)
	}
	return uint32(n), nil
}

// parseHoldTime takes seconds or a Go duration; 0 or 3 to 65535 s (RFC
// 4271: a hold time of 1 or 2 s is refused by peers).
func parseHoldTime(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseUint(s, 10, 16)
		if nerr != nil {
			return 0, fmt.Errorf("not a duration")
		}
		d = time.Duration(n) * time.Second
	}
	if d%time.Second != 0 || (d != 0 && d < 3*time.Second) || d > 65535*time.Second {
		return 0, fmt.Errorf("hold time must be whole seconds, 0 or 3 to 65535")
	}
	return d, nil
}
