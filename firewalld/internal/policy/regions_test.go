package policy

import (
	"fmt"
	networkingv1 "k8s.io/api/networking/v1"
	"net/netip"
	"strings"
	"testing"
)

func block(t *testing.T, cidr string, except ...string) *peer {
	t.Helper()
	p, err := parseIPBlock(&networkingv1.IPBlock{CIDR: cidr, Except: except})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func describeRegions(rs []region) string {
	var b strings.Builder
	for _, r := range rs {
		var names []string
		for _, p := range r.peers {
			names = append(names, strings.ReplaceAll(strings.TrimPrefix(p.key, "ip\x00"), "\x00", " except "))
		}
		fmt.Fprintf(&b, "%s-%s [%s]\n", r.from, r.to, strings.Join(names, "; "))
	}
	return b.String()
}

func TestRegions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		blocks func(t *testing.T) []*peer
		want   string
	}{
		{"one block", func(t *testing.T) []*peer { return []*peer{block(t, "198.18.0.0/24")} },
			"198.18.0.0-198.18.0.255 [198.18.0.0/24]\n"},
		{"except in the middle", func(t *testing.T) []*peer { return []*peer{block(t, "198.18.0.0/24", "198.18.0.128/26")} },
			"198.18.0.0-198.18.0.127 [198.18.0.0/24 except 198.18.0.128/26]\n198.18.0.192-198.18.0.255 [198.18.0.0/24 except 198.18.0.128/26]\n"},
		{"except at both ends", func(t *testing.T) []*peer {
			return []*peer{block(t, "198.18.0.0/24", "198.18.0.0/26", "198.18.0.192/26")}
		}, "198.18.0.64-198.18.0.191 [198.18.0.0/24 except 198.18.0.0/26 except 198.18.0.192/26]\n"},
		{"nested blocks", func(t *testing.T) []*peer {
			return []*peer{block(t, "198.18.0.0/16"), block(t, "198.18.1.0/24")}
		}, "198.18.0.0-198.18.0.255 [198.18.0.0/16]\n198.18.1.0-198.18.1.255 [198.18.0.0/16; 198.18.1.0/24]\n198.18.2.0-198.18.255.255 [198.18.0.0/16]\n"},
		{"the whole space", func(t *testing.T) []*peer {
			return []*peer{block(t, "0.0.0.0/0", "198.18.0.0/15")}
		}, "0.0.0.0-198.17.255.255 [0.0.0.0/0 except 198.18.0.0/15]\n198.20.0.0-255.255.255.255 [0.0.0.0/0 except 198.18.0.0/15]\n"},
		{"except equal to the cidr", func(t *testing.T) []*peer { return []*peer{block(t, "198.18.0.0/24", "198.18.0.0/24")} }, ""},
		{"nested excepts", func(t *testing.T) []*peer {
			return []*peer{block(t, "198.18.0.0/16", "198.18.0.0/17", "198.18.1.0/24")}
		}, "198.18.128.0-198.18.255.255 [198.18.0.0/16 except 198.18.0.0/17 except 198.18.1.0/24]\n"},
		{"host routes and IPv6", func(t *testing.T) []*peer {
			return []*peer{block(t, "198.18.0.7/32"), block(t, "2001:db8::/127"), block(t, "::/0")}
		}, "198.18.0.7-198.18.0.7 [198.18.0.7/32]\n::-2001:db7:ffff:ffff:ffff:ffff:ffff:ffff [::/0]\n2001:db8::-2001:db8::1 [2001:db8::/127; ::/0]\n2001:db8::2-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff [::/0]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := describeRegions(regions(tc.blocks(t)))
			if got != tc.want {
				t.Errorf("regions:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{"198.18.0.0/15": "198.19.255.255", "0.0.0.0/0": "255.255.255.255", "198.18.3.4/32": "198.18.3.4", "2001:db8::/64": "2001:db8::ffff:ffff:ffff:ffff"} {
		if got := lastAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}
