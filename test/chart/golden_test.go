package chart

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files (testdata/*.yaml and test/controlplane/rbac.yaml)")

// Layouts are the chart's two layouts.
var Layouts = []string{"combined", "split"}

// subset is one choice of enabled daemons.
type subset []string

func (s subset) name() string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "-")
}

// values are the --set values enabling exactly s in layout.
func (s subset) values(layout string) map[string]any {
	kv := map[string]any{"layout": layout}
	for _, d := range Daemons {
		kv[d+".enabled"] = strings.Contains(","+strings.Join(s, ",")+",", ","+d+",")
	}
	return Values(kv)
}

// subsets are the 7 non-empty subsets of the daemons.
func subsets() []subset {
	var all []subset
	for mask := 1; mask < 1<<len(Daemons); mask++ {
		var s subset
		for i, d := range Daemons {
			if mask&(1<<i) != 0 {
				s = append(s, d)
			}
		}
		all = append(all, s)
	}
	return all
}

// TestTemplate lints and renders every non-empty subset of daemons in both
// layouts and compares each render with its golden file.
func TestTemplate(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, layout := range Layouts {
		for _, s := range subsets() {
			name := layout + "-" + s.name()
			t.Run(name, func(t *testing.T) {
				vals := s.values(layout)
				if err := Lint(vals); err != nil {
					t.Error(err)
				}
				r, err := Render(c, vals)
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, filepath.Join("testdata", name+".yaml"), r.Manifest)
				for _, d := range s {
					if !strings.Contains(r.Notes, "-- /"+d+" status") {
						t.Errorf("NOTES.txt does not tell how to ask %s's status:\n%s", d, r.Notes)
					}
				}
			})
		}
	}
}

// TestTemplateOptions renders the values the subsets leave at their
// defaults: external peers, the API server's address, the service monitor.
func TestTemplateOptions(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	vals := optionValues()
	if err := Lint(vals); err != nil {
		t.Error(err)
	}
	r, err := Render(c, vals)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("testdata", "options.yaml"), r.Manifest)
}

// optionValues set every optional part of the chart.
func optionValues() map[string]any {
	vals := Values(map[string]any{
		"metricsBindAddress":          "0.0.0.0",
		"apiServer.host":              "198.18.0.1",
		"serviceMonitor.enabled":      true,
		"routerd.asn":                 4200000000,
		"routerd.advertise.clusterIP": true,
		"routerd.noMasquerade":        []any{"198.19.0.0/16"},
		"routerd.ipamDataDir":         "/var/lib/nodenet/ipam",
		"routerd.args":                []any{"--sync-max-interval=10m"},
		"proxyd.scheduler":            "wlc",
		"proxyd.strictARP":            true,
		"firewalld.privileged":        false,
		"firewalld.bridgeNetfilter":   false,
		"firewalld.logDrops.group":    100,
		"imagePullSecrets":            []any{map[string]any{"name": "registry"}},
		"updateStrategy":              map[string]any{"type": "OnDelete"},
	})
	vals["routerd"].(map[string]any)["peers"] = []any{
		map[string]any{"address": "198.18.0.254", "asn": 65000},
		map[string]any{"address": "198.18.0.253", "asn": 65001, "port": 1179, "passwordSecret": "bgp-md5", "holdTime": "30s", "multihop": 2},
	}
	return vals
}

// TestGuards checks the values the chart refuses, each with a message that
// names the problem, from the schema or a guard. Helm's linter reports the
// schema's errors but only logs a template's fail (lint mode), so only the
// schema's are expected from lint too.
func TestGuards(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	peer := func(p map[string]any) map[string]any {
		v := Values(map[string]any{})
		v["routerd"] = map[string]any{"peers": []any{p}}
		return v
	}
	tests := []struct {
		name   string
		vals   map[string]any
		want   string
		schema bool
	}{
		{"no daemon, combined", subset{}.values("combined"), "no daemon is enabled", false},
		{"no daemon, split", subset{}.values("split"), "no daemon is enabled", false},
		{"peer without asn", peer(map[string]any{"address": "198.18.0.254"}), "routerd.peers[0] (address 198.18.0.254) has no asn", false},
		{"peer without address", peer(map[string]any{"asn": 65000}), "address", true},
		{"wait for a disabled firewalld", Values(map[string]any{"firewalld.enabled": false, "routerd.waitForFirewalld": "true"}), "firewalld is disabled", false},
		{"two daemons on one port", Values(map[string]any{"proxyd.metricsPort": 10280}), "proxyd.metricsPort 10280 is also routerd's", false},
		{"service monitor on loopback", Values(map[string]any{"serviceMonitor.enabled": true}), "needs metricsBindAddress 0.0.0.0", false},
		{"unknown layout", Values(map[string]any{"layout": "sidecar"}), "layout", true},
		{"unknown value", Values(map[string]any{"proxyd.sheduler": "rr"}), "sheduler", true},
		{"unknown scheduler", Values(map[string]any{"proxyd.scheduler": "lblc"}), "scheduler", true},
		{"bad tunnel", Values(map[string]any{"routerd.tunnel": "vxlan"}), "tunnel", true},
		{"ASN out of range", Values(map[string]any{"routerd.asn": 4294967296}), "asn", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(c, tt.vals)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("render: %v, want an error with %q", err, tt.want)
			}
			if !tt.schema {
				return
			}
			if err := Lint(tt.vals); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("lint: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// checkGolden compares got with the golden file, or rewrites it with
// -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run cd test/chart && GOWORK=off go test . -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from the render (-golden +render; cd test/chart && GOWORK=off go test . -update rewrites it):\n%s", path, diff)
	}
}
