package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestOutputDirs(t *testing.T) {
	root := t.TempDir()
	b001 := filepath.Join(root, "b001")
	cover := filepath.Join(b001, "gocoverdir")
	prof := filepath.Join(root, "prof")
	envCover := filepath.Join(root, "envcover")
	for _, d := range []string{cover, prof, envCover} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{
		"-test.paniconexit0",
		"-test.testlogfile=" + filepath.Join(b001, "testlog.txt"),
		"-test.gocoverdir=" + cover,
		"-test.coverprofile=" + filepath.Join(b001, "_cover_.out"), // same dir as the test log: once
		"-test.outputdir", prof, // separate-value form
		"-test.cpuprofile=cpu.out",                                   // relative: under -test.outputdir
		"-test.trace=" + filepath.Join(root, "missing", "trace.out"), // no such dir on the host: skipped
		"-test.run=^TestX$",
	}
	got := outputDirs(args, root, []string{"GOCOVERDIR=" + envCover, "HOME=/root"})
	want := []string{b001, prof, cover, envCover}
	if !slices.Equal(got, want) {
		t.Errorf("outputDirs = %q\nwant         %q", got, want)
	}
	if got := outputDirs([]string{"-test.v=true", "-test.count=1"}, root, nil); len(got) != 0 {
		t.Errorf("no output flags: %q", got)
	}
}
