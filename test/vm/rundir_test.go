package vm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestSweepRunDirs(t *testing.T) {
	tmp := t.TempDir()
	// A pid that existed and is gone: a process that has been waited for.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	dirs := map[string]bool{ // name → should survive
		fmt.Sprintf("nodenet-vm-%d-123", os.Getpid()): true, // ours, in use
		fmt.Sprintf("nodenet-vm-%d-456", dead):        false,
		"nodenet-vm-notapid-789":                      true,
		"other-dir":                                   true,
	}
	for d := range dirs {
		if err := os.MkdirAll(filepath.Join(tmp, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sweepRunDirs(tmp)
	for d, survive := range dirs {
		_, err := os.Stat(filepath.Join(tmp, d))
		if survive && err != nil {
			t.Errorf("%s removed", d)
		}
		if !survive && err == nil && !processExists(dead) {
			t.Errorf("%s (runner gone) kept", d)
		}
	}
}
