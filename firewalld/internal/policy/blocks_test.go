package policy

import (
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

func TestBlockRanges(t *testing.T) {
	for _, tc := range []struct {
		cidr   string
		except []string
		want   string
	}{
		{"198.18.0.0/24", nil, "198.18.0.0-198.18.0.255"},
		{"198.18.0.0/24", []string{"198.18.0.128/26"}, "198.18.0.0-198.18.0.127 198.18.0.192-198.18.0.255"},
		{"198.18.0.0/24", []string{"198.18.0.0/26", "198.18.0.192/26"}, "198.18.0.64-198.18.0.191"},
		{"0.0.0.0/0", []string{"198.18.0.0/15"}, "0.0.0.0-198.17.255.255 198.20.0.0-255.255.255.255"},
		{"198.18.0.0/24", []string{"198.18.0.0/24"}, ""},
		{"198.18.0.0/16", []string{"198.18.0.0/17", "198.18.1.0/24"}, "198.18.128.0-198.18.255.255"},
		{"198.18.0.7/32", nil, "198.18.0.7-198.18.0.7"},
		{"2001:db8::/127", nil, "2001:db8::-2001:db8::1"},
	} {
		var got []string
		for _, r := range block(t, tc.cidr, tc.except...).ranges() {
			got = append(got, r.from.String()+"-"+r.to.String())
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%s except %v: %s, want %s", tc.cidr, tc.except, g, tc.want)
		}
	}
}

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{"198.18.0.0/15": "198.19.255.255", "0.0.0.0/0": "255.255.255.255", "198.18.3.4/32": "198.18.3.4", "2001:db8::/64": "2001:db8::ffff:ffff:ffff:ffff"} {
		if got := lastAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("lastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}
