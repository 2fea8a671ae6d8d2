package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/test/vm"
)

// TestRunGoTestBinary does what go test -exec does: vmexec runs a test
// binary (this one) with go test's flags. The guest half fails on purpose:
// its exit code, its output and the test log it writes to a host directory
// all come back.
func TestRunGoTestBinary(t *testing.T) {
	_, skip, err := vm.AssetsForTests(t.Context(), t.Output())
	if err != nil {
		t.Fatalf("CI=true: the VM must run: %v", err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(t.TempDir(), "testlog.txt")
	t.Setenv("NODENET_VMEXEC_GUEST", "fail")
	var stdout, stderr bytes.Buffer
	code := run([]string{"-timeout", "2m", exe, "-test.run=^TestGuestHalf$", "-test.v=true", "-test.testlogfile=" + logFile},
		os.Getenv, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (a failed test)\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	if !strings.Contains(stdout.String(), "--- FAIL: TestGuestHalf") || !strings.Contains(stdout.String(), "failing on purpose in the VM") {
		t.Errorf("stdout lacks the guest test's failure:\n%s", &stdout)
	}
	if b, err := os.ReadFile(logFile); err != nil || !strings.HasPrefix(string(b), "# test log") {
		t.Errorf("the test log did not reach the host: %q, %v", b, err)
	}
}

// TestGuestHalf is the guest half of TestRunGoTestBinary.
func TestGuestHalf(t *testing.T) {
	if os.Getenv("NODENET_VMEXEC_GUEST") != "fail" {
		t.Skip("the guest half of TestRunGoTestBinary")
	}
	if os.Getenv(vm.GuestEnv) != "1" {
		t.Fatal("not in the VM")
	}
	t.Fatal("failing on purpose in the VM")
}
