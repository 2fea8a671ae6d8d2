package podnet

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// Address plan of these tests: pod CIDRs in 198.18.128.0/17 and
// 2001:db8::/32 (documentation), nothing is sent anywhere.

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestConfListGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		c      Config
	}{
		{"conflist-v4.golden", Config{
			PodCIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/24")},
		}},
		{"conflist-dual-portmap.golden", Config{
			Bridge:      "br-pods",
			MTU:         1450,
			PortMap:     true,
			IPAMDataDir: "/run/nodenet/ipam",
			// IPv6 given first: the output lists IPv4 first all the same.
			PodCIDRs: []netip.Prefix{netip.MustParsePrefix("2001:db8:0:80::/64"), netip.MustParsePrefix("198.18.129.0/24")},
		}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := ConfList(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			again, err := ConfList(tc.c)
			if err != nil || !bytes.Equal(got, again) {
				t.Fatalf("a second rendering differs (%v):\n%s\n%s", err, got, again)
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ConfList differs from %s (run with -update if intended):\n%s", path, got)
			}
			// What a runtime does with it: libcni (containerd, CRI-O)
			// parses it as a network list.
			list, err := libcni.NetworkConfFromBytes(got)
			if err != nil {
				t.Fatalf("libcni: %v", err)
			}
			if list.Name != NetworkName || list.CNIVersion != CNIVersion || list.Plugins[0].Network.Type != "bridge" {
				t.Errorf("libcni read %s %s, first plugin %q", list.Name, list.CNIVersion, list.Plugins[0].Network.Type)
			}
			wantPlugins := 1
			if tc.c.PortMap {
				wantPlugins = 2
			}
			if len(list.Plugins) != wantPlugins {
				t.Errorf("%d plugins, want %d", len(list.Plugins), wantPlugins)
			}
			// And routerd reads its pod CIDRs back from it.
			dir := t.TempDir()
			if _, err := WriteConfList(dir, "", got); err != nil {
				t.Fatal(err)
			}
			cidrs, err := PodCIDRsFromCNI(dir)
			if err != nil || len(cidrs) != len(tc.c.PodCIDRs) {
				t.Fatalf("PodCIDRsFromCNI of the rendered config: %v, %v", cidrs, err)
			}
		})
	}
}

func TestConfListFields(t *testing.T) {
	b, err := ConfList(Config{MTU: 1400, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatal(err)
	}
	br := list.Plugins[0]
	for k, want := range map[string]any{
		"type": "bridge", "bridge": DefaultBridge, "isGateway": true, "isDefaultGateway": true,
		"hairpinMode": true, "mtu": 1400.0,
	} {
		if br[k] != want {
			t.Errorf("bridge plugin %s = %v, want %v", k, br[k], want)
		}
	}
	ipam := br["ipam"].(map[string]any)
	if ipam["type"] != "host-local" {
		t.Errorf("ipam type %v", ipam["type"])
	}
	if _, ok := ipam["dataDir"]; ok {
		t.Error("dataDir written although not configured")
	}
	for _, p := range list.Plugins {
		if p["type"] == "loopback" || p["type"] == "portmap" {
			t.Errorf("plugin %v in the list", p["type"])
		}
	}
}

func TestConfListRejects(t *testing.T) {
	v4 := netip.MustParsePrefix("198.18.128.0/24")
	for name, c := range map[string]Config{
		"no CIDR":          {},
		"zero CIDR":        {PodCIDRs: []netip.Prefix{{}}},
		"host bits":        {PodCIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.128.1/24")}},
		"too small":        {PodCIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/31")}},
		"v6 too small":     {PodCIDRs: []netip.Prefix{netip.MustParsePrefix("2001:db8::/127")}},
		"4in6":             {PodCIDRs: []netip.Prefix{netip.MustParsePrefix("::ffff:198.18.128.0/120")}},
		"two v4":           {PodCIDRs: []netip.Prefix{v4, netip.MustParsePrefix("198.18.129.0/24")}},
		"long bridge name": {Bridge: "a-very-long-bridge", PodCIDRs: []netip.Prefix{v4}},
		"slash in name":    {Bridge: "kube/bridge", PodCIDRs: []netip.Prefix{v4}},
		"space in name":    {Bridge: "kube bridge", PodCIDRs: []netip.Prefix{v4}},
		"dot name":         {Bridge: ".", PodCIDRs: []netip.Prefix{v4}},
		"MTU too low":      {MTU: 67, PodCIDRs: []netip.Prefix{v4}},
		"MTU too high":     {MTU: 65536, PodCIDRs: []netip.Prefix{v4}},
		"MTU negative":     {MTU: -1, PodCIDRs: []netip.Prefix{v4}},
		"MTU below IPv6's": {MTU: 1279, PodCIDRs: []netip.Prefix{v4, netip.MustParsePrefix("2001:db8::/64")}},
		"relative dataDir": {IPAMDataDir: "ipam", PodCIDRs: []netip.Prefix{v4}},
	} {
		if b, err := ConfList(c); err == nil {
			t.Errorf("%s: no error, rendered\n%s", name, b)
		}
	}
	// The limits themselves are fine.
	for name, c := range map[string]Config{
		"MTU 68":          {MTU: 68, PodCIDRs: []netip.Prefix{v4}},
		"MTU 65535":       {MTU: 65535, PodCIDRs: []netip.Prefix{v4}},
		"15-byte name":    {Bridge: strings.Repeat("b", 15), PodCIDRs: []netip.Prefix{v4}},
		"/30":             {PodCIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/30")}},
		"IPv6 only, 1280": {MTU: 1280, PodCIDRs: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64")}},
	} {
		if _, err := ConfList(c); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
