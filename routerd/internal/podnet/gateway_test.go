package podnet

import (
	"net/netip"
	"testing"
)

func TestGateway(t *testing.T) {
	for in, want := range map[string]string{
		"198.18.128.0/24":    "198.18.128.1/24",
		"198.18.0.0/15":      "198.18.0.1/15",
		"198.18.128.4/30":    "198.18.128.5/30",
		"2001:db8::/64":      "2001:db8::1/64",
		"2001:db8:0:1::/126": "2001:db8:0:1::1/126",
	} {
		got, err := Gateway(netip.MustParsePrefix(in))
		if err != nil || got.String() != want {
			t.Errorf("Gateway(%s) = %v, %v; want %s", in, got, err, want)
		}
		if !isGatewayShaped(got) {
			t.Errorf("Gateway(%s) = %s does not look like a gateway", in, got)
		}
	}
	for _, in := range []netip.Prefix{
		{},
		netip.MustParsePrefix("198.18.128.1/24"), // host bits
		netip.MustParsePrefix("198.18.128.0/31"),
		netip.MustParsePrefix("198.18.128.0/32"),
		netip.MustParsePrefix("2001:db8::/127"),
		netip.MustParsePrefix("::ffff:198.18.0.0/112"),
	} {
		if got, err := Gateway(in); err == nil {
			t.Errorf("Gateway(%v) = %v, want an error", in, got)
		}
	}
	for in, want := range map[string]bool{
		"198.18.128.1/24": true,
		"198.18.128.2/24": false,
		"198.18.128.0/24": false,
		"198.18.0.10/24":  false, // a node address
		"2001:db8::1/64":  true,
		"198.18.128.1/32": false, // no room for a pod: never a gateway
	} {
		if got := isGatewayShaped(netip.MustParsePrefix(in)); got != want {
			t.Errorf("isGatewayShaped(%s) = %v", in, got)
		}
	}
}

func TestBridgeMAC(t *testing.T) {
	a, err := BridgeMAC(netip.MustParsePrefix("198.18.128.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := BridgeMAC(netip.MustParsePrefix("198.18.128.0/24"))
	other, _ := BridgeMAC(netip.MustParsePrefix("198.18.129.0/24"))
	v6, _ := BridgeMAC(netip.MustParsePrefix("2001:db8::/64"))
	if a.String() != again.String() {
		t.Errorf("BridgeMAC not deterministic: %s, %s", a, again)
	}
	if a.String() == other.String() || a.String() == v6.String() {
		t.Errorf("two pod CIDRs share the MAC %s", a)
	}
	for _, m := range [][]byte{a, other, v6} {
		if len(m) != 6 || m[0]&0x01 != 0 || m[0]&0x02 == 0 {
			t.Errorf("%x is not a locally administered unicast address", m)
		}
	}
	if _, err := BridgeMAC(netip.Prefix{}); err == nil {
		t.Error("BridgeMAC of an invalid prefix: no error")
	}
}
