package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Test binary flags naming a file the binary writes, and the ones naming a
// directory. go test passes them as -test.name=value.
func fileFlags() []string {
	return []string{"testlogfile", "coverprofile", "cpuprofile", "memprofile", "blockprofile", "mutexprofile", "trace"}
}

func dirFlags() []string { return []string{"outputdir", "gocoverdir", "fuzzcachedir"} }

// outputDirs are the host directories a test binary run with args writes
// to (the test log go test reads for caching, coverage, profiles), plus
// GOCOVERDIR: they must be shared read-write, or what the binary writes
// would stay in the guest. Relative files are under -test.outputdir (as the
// testing package writes them) or else wd. Only existing directories count.
func outputDirs(args []string, wd string, env []string) []string {
	values := map[string]string{}
	for i := 0; i < len(args); i++ {
		name, ok := strings.CutPrefix(strings.TrimPrefix(args[i], "-"), "-test.")
		if !ok {
			name, ok = strings.CutPrefix(strings.TrimPrefix(args[i], "-"), "test.")
		}
		if !ok {
			continue
		}
		if n, v, hasValue := strings.Cut(name, "="); hasValue {
			values[n] = v
		} else if i+1 < len(args) && (slices.Contains(fileFlags(), name) || slices.Contains(dirFlags(), name)) {
			values[name] = args[i+1]
			i++
		}
	}
	outDir := wd
	if d := values["outputdir"]; d != "" {
		outDir = abs(d, wd)
	}
	var dirs []string
	for _, f := range fileFlags() {
		if v := values[f]; v != "" {
			dirs = append(dirs, filepath.Dir(abs(v, outDir)))
		}
	}
	for _, f := range dirFlags() {
		if v := values[f]; v != "" {
			dirs = append(dirs, abs(v, wd))
		}
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GOCOVERDIR="); ok && v != "" {
			dirs = append(dirs, abs(v, wd))
		}
	}
	var out []string
	for _, d := range dirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

func abs(p, base string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}
