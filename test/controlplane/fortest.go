package controlplane

import (
	"errors"
	"os"
	"strconv"
	"testing"
)

// logDumpLimit bounds how much of each process's log a failed test prints:
// the end is what explains a failure.
const logDumpLimit = 256 << 10

// StartForTest starts a control plane for t and stops it in t.Cleanup (also
// when the test fails or panics; if the test binary dies, Pdeathsig kills the
// processes). When the binaries are not built it skips t, unless CI is set
// (CI=true): then it builds them, about 8 minutes cold on 2 cores, more than
// go test's default -timeout allows (build them first: `make controlplane`).
// When t fails, the end of every process's log goes to t.Log.
func StartForTest(t testing.TB) *ControlPlane {
	t.Helper()
	return StartForTestWith(t, Options{})
}

// StartForTestWith is StartForTest with options (e.g. ServingIPs). Dir and
// Build are the test's: a directory of t's own, and whether CI is set.
func StartForTestWith(t testing.TB, opts Options) *ControlPlane {
	t.Helper()
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	opts.Dir, opts.Build = t.TempDir(), ci
	cp, err := Start(t.Context(), opts)
	if errors.Is(err, ErrBinariesMissing) {
		t.Skipf("%v", err)
	}
	if err != nil {
		t.Fatalf("start the control plane: %v", err)
	}
	t.Logf("control plane at %s started in %v (dir %s)", cp.URL, cp.StartDuration.Round(1e6), cp.Dir)
	t.Cleanup(func() {
		cp.Stop()
		if t.Failed() {
			logs := cp.LogTails(logDumpLimit)
			for _, name := range binaryNames {
				if log, ok := logs[name]; ok {
					t.Logf("----- %s log -----\n%s", name, log)
				}
			}
		}
	})
	return cp
}
