package daemonproc

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCovers(t *testing.T) {
	// As `<daemon> status -o json` writes it (protojson: uint64 as strings).
	const doc = `{"reachable":true,"health":"SERVING","status":{"sync":{"syncs":"4","applied":[
		{"kind":"endpointslices","resourceVersion":"1240","generation":"30"},
		{"kind":"nodes","generation":"1"},
		{"kind":"services","resourceVersion":"999","generation":"17"}]}}}`
	var r Report
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind, rv string
		ok       bool
		why      string
	}{
		{"services", "999", true, ""},
		{"services", "998", true, ""},
		{"services", "1000", false, "services@999"}, // numerically, not "999" > "1000"
		{"endpointslices", "1000", true, ""},
		{"nodes", "1", false, "nodes@ (1 events)"},
		{"pods", "1", false, "no pods"},
		{"services", "abc", false, "not a decimal"},
	} {
		ok, why := Covers(c.kind, c.rv)(r)
		if ok != c.ok || !strings.Contains(why, c.why) {
			t.Errorf("Covers(%s, %s) = %v, %q; want %v, %q", c.kind, c.rv, ok, why, c.ok, c.why)
		}
	}
}
