//go:build kernel

package netns

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/netns/echo"
)

// testCtx bounds one step of a test.
func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// skipWithoutSCTP skips the test when err says the kernel has no SCTP: such
// a case is not run here (it runs in the VM), so it must not count as passed.
func skipWithoutSCTP(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, echo.ErrSCTPUnsupported) {
		t.Skipf("SCTP: this kernel has no SCTP (%v); the SCTP cases run in the VM layer with Debian's kernel", err)
	}
}

// checkAnswer checks who answered and which source address it saw.
func checkAnswer(t *testing.T, a echo.Answer, proto, server string, source netip.Addr) {
	t.Helper()
	if a.Proto != proto || a.Name != server || a.Source.Addr() != source {
		t.Fatalf("answer %+v: want %s from %s seeing source %s", a, proto, server, source)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// isolatedStateDir is a state directory of the test's own, for tests that
// sweep leftovers or fake them. It lies inside a run directory owned by
// this process under the default state dir, so if this process dies before
// its cleanup, the next topology removes it with everything pinned in it.
func isolatedStateDir(t *testing.T) string {
	t.Helper()
	base, err := Options{}.stateDir()
	must(t, err)
	id, err := newRunID()
	must(t, err)
	o, err := selfOwner(t.Name())
	must(t, err)
	dir, err := createRunDir(base, id, o)
	must(t, err)
	t.Cleanup(func() {
		if err := removeRunDir(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	state := filepath.Join(dir, "state")
	must(t, os.Mkdir(state, 0o755))
	return state
}
