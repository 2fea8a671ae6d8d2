// Package testutil holds helpers shared by the tests of several packages.
// Nothing here sleeps: waits poll a condition against a deadline.
package testutil

import (
	"os"
	"testing"
	"time"
)

// SocketDir returns a fresh directory removed at the end of the test, with a
// path short enough for unix sockets (sun_path holds 108 bytes; t.TempDir()
// paths of long test names do not fit).
func SocketDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Eventually waits until cond holds, checking it every few milliseconds and
// whenever wake fires (wake may be nil); it fails the test after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, wake <-chan struct{}, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-wake:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}
