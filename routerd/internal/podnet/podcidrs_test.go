package podnet

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestPodCIDRsFromCNI(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want []string
		// errs are the files the error must name; none: no error.
		errs []string
	}{
		// The first file is broken (skipped, reported); the second is the
		// runtime's: IPv4 and IPv6; the third is not looked at; .txt is
		// not a config.
		{"dualstack", []string{"198.18.130.0/24", "2001:db8:0:82::/64"}, []string{"05-broken.conflist"}},
		// A single plugin's .conf with host-local's old subnet field.
		{"oldstyle", []string{"198.18.132.0/24"}, nil},
		// The runtime uses the first config, which has no host-local:
		// no pod CIDR, although a later file has one.
		{"firstwins", nil, nil},
		// A .json list: the static IPAM's subnet is not a pod CIDR;
		// host-local's subnet and ranges, without duplicates.
		{"mixedipam", []string{"198.18.134.0/24", "2001:db8:0:86::/64"}, nil},
		// An empty list and a plugin without a type are skipped; the
		// third file is the runtime's, its bad subnets are left out.
		{"malformed", []string{"198.18.136.0/24"}, []string{"10-empty.conflist", "15-notype.conf", "20-badsubnet.conflist", "198.18.135.1/24", "not-a-cidr"}},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			got, err := PodCIDRsFromCNI(filepath.Join("testdata", "cni", tc.dir))
			if s := prefixStrings(got); !slices.Equal(s, tc.want) {
				t.Errorf("pod CIDRs %v, want %v", s, tc.want)
			}
			switch {
			case len(tc.errs) == 0 && err != nil:
				t.Errorf("error %v", err)
			case len(tc.errs) > 0 && err == nil:
				t.Errorf("no error, want one naming %v", tc.errs)
			}
			for _, name := range tc.errs {
				if err != nil && !strings.Contains(err.Error(), name) {
					t.Errorf("error does not name %s: %v", name, err)
				}
			}
		})
	}
}

func TestPodCIDRsFromCNIEdges(t *testing.T) {
	if got, err := PodCIDRsFromCNI(filepath.Join(t.TempDir(), "missing")); got != nil || err != nil {
		t.Errorf("missing directory: %v, %v", got, err)
	}
	if got, err := PodCIDRsFromCNI(t.TempDir()); got != nil || err != nil {
		t.Errorf("empty directory: %v, %v", got, err)
	}
	// A directory named like a config is not one.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "05-dir.conflist"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"198.18.137.0/24"}]]}}]}`
	if err := os.WriteFile(filepath.Join(dir, "10-n.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := PodCIDRsFromCNI(dir)
	if err != nil || !slices.Equal(prefixStrings(got), []string{"198.18.137.0/24"}) {
		t.Errorf("%v, %v", got, err)
	}
	// A list (the name says so) without plugins is no config.
	if err := os.WriteFile(filepath.Join(dir, "01-x.conflist"), []byte(`{"name":"x","type":"bridge"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = PodCIDRsFromCNI(dir)
	if err == nil || !strings.Contains(err.Error(), "01-x.conflist") || len(got) != 1 {
		t.Errorf("a list without plugins: %v, %v", got, err)
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprint(p))
	}
	return out
}
