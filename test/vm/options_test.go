package vm

import (
	"slices"
	"testing"
)

func TestParseForward(t *testing.T) {
	f, err := ParseForward("6443=127.0.0.1:6443")
	if err != nil || f != (Forward{GuestPort: 6443, Host: "127.0.0.1:6443"}) {
		t.Fatalf("ParseForward = %+v, %v", f, err)
	}
	if f, err := ParseForward("80=[::1]:8080"); err != nil || f.Host != "[::1]:8080" {
		t.Fatalf("ParseForward IPv6 = %+v, %v", f, err)
	}
	for _, bad := range []string{"", "6443", "=127.0.0.1:1", "0=127.0.0.1:1", "70000=127.0.0.1:1",
		"1=127.0.0.1", "1=localhost:80", "1=127.0.0.1:0", "1=127.0.0.1:x"} {
		if _, err := ParseForward(bad); err == nil {
			t.Errorf("ParseForward(%q) accepted", bad)
		}
	}
}

func TestDefaultModules(t *testing.T) {
	mods := DefaultModules()
	if err := validateModules(mods); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_sh", "ip_vs_mh", "ipip", "dummy", "veth",
		"bridge", "vxlan", "nf_conntrack", "nf_nat", "nf_tables", "nft_chain_nat", "nft_masq", "sctp"} {
		if !slices.Contains(mods, m) {
			t.Errorf("DefaultModules lacks %s", m)
		}
	}
	// Each call is a fresh slice: callers append to it.
	a := DefaultModules()
	a[0] = "changed"
	if DefaultModules()[0] == "changed" {
		t.Error("DefaultModules shares its slice")
	}
}

func TestValidateModules(t *testing.T) {
	for _, bad := range []string{"", "a b", "x;reboot", "../x", "m'"} {
		if err := validateModules([]string{bad}); err == nil {
			t.Errorf("validateModules(%q) accepted", bad)
		}
	}
}
