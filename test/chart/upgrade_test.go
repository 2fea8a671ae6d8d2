package chart

import (
	"strings"
	"testing"
)

// TestUpgradeOneDaemon renders the chart before and after `--set
// <daemon>.image.tag=X` and checks the only difference is that daemon's
// image lines (its container's and its init container's): no checksum or label shared by the containers changes, so
// the other daemons' containers (in the split layout, their DaemonSets)
// keep their spec. (In the combined layout the DaemonSet still replaces
// the pod, and so restarts every container of it: that is what the split
// layout is for.)
func TestUpgradeOneDaemon(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, layout := range Layouts {
		before, err := Render(c, Values(map[string]any{"layout": layout}))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range Daemons {
			after, err := Render(c, Values(map[string]any{"layout": layout, d + ".image.tag": "v9.9.9"}))
			if err != nil {
				t.Fatal(err)
			}
			old, cur := strings.Split(before.Manifest, "\n"), strings.Split(after.Manifest, "\n")
			if len(old) != len(cur) {
				t.Fatalf("%s, %s upgraded: %d lines, was %d", layout, d, len(cur), len(old))
			}
			var changed []string
			for i := range old {
				if old[i] != cur[i] {
					changed = append(changed, old[i]+" → "+cur[i])
				}
			}
			// The daemon's image lines: its container's, and its prepare
			// init container's (proxyd, firewalld), which runs the same
			// binary.
			want := `image: "nodenet/` + d + `:0.1.0" → ` + strings.Repeat(" ", imageIndent(old, d)) + `image: "nodenet/` + d + `:v9.9.9"`
			images := strings.Count(before.Manifest, `image: "nodenet/`+d+`:0.1.0"`)
			if images < 1 || (d == "proxyd" && images != 2) {
				t.Fatalf("%s: %d image lines of %s; want its container's (and proxyd's prepare init container's)", layout, images, d)
			}
			ok := len(changed) == images
			for _, c := range changed {
				ok = ok && strings.TrimSpace(c) == want
			}
			if !ok {
				t.Errorf("%s, %s upgraded: changed lines %q, want only %d × %q", layout, d, changed, images, want)
			}
		}
	}
}

// imageIndent is the indentation of daemon d's image line in lines.
func imageIndent(lines []string, d string) int {
	for _, l := range lines {
		if strings.TrimSpace(l) == `image: "nodenet/`+d+`:0.1.0"` {
			return len(l) - len(strings.TrimLeft(l, " "))
		}
	}
	return 0
}
