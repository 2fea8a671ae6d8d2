// Package daemontest runs a daemon's Spec inside the test's process (its
// controller over fakes, its socket in a test directory) and the daemon's
// subcommands against it, the way the CLI tests of the daemons' app
// packages check `trace`, `routes` and the like end to end, with golden
// files for what they print.
package daemontest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/daemon"
)

// Node is the node name the daemon runs as and the CLI is invoked on.
const Node = "node-0"

// Start runs spec as the daemon name of Node with its socket in runDir, no
// metrics listener and no peers, until the test ends. spec.NewController
// is the test's (fakes); Prepare and Cleanup are not run.
func Start(t *testing.T, spec daemon.Spec, runDir string) {
	t.Helper()
	spec.Prepare, spec.Cleanup = nil, nil
	cfg := config.DefaultCommon(spec.Name, 0, Node)
	cfg.RunDir, cfg.MetricsAddr, cfg.Peers = runDir, "", nil
	cfg.SyncMinInterval = 10 * time.Millisecond
	d, err := daemon.New(spec, cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
}

// Result is what a subcommand did.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs spec's command line args on Node with an empty environment.
func Run(spec daemon.Spec, args ...string) Result {
	var out, errOut bytes.Buffer
	code := daemon.Main(spec, daemon.Env{Args: args, LookupEnv: func(string) (string, bool) { return "", false },
		Stdout: &out, Stderr: &errOut, Hostname: Node})
	return Result{code, out.String(), errOut.String()}
}

// The sync time differs from run to run, and so does the generation (the
// informers' first events may or may not cause a second sync).
var (
	jsonTime = regexp.MustCompile(`"syncTime": "[^"]*"`)
	textTime = regexp.MustCompile(` at \d{4}-\d\d-\d\dT[0-9:.]+Z`)
	jsonGen  = regexp.MustCompile(`"syncGeneration": "\d+"`)
	textGen  = regexp.MustCompile(`sync \d+ of `)
)

// NormalizeSync puts placeholders for the sync time and generation in the
// text or JSON output of a query answered from a daemon's last sync.
func NormalizeSync(s string) string {
	s = jsonTime.ReplaceAllString(s, `"syncTime": "SYNC_TIME"`)
	s = jsonGen.ReplaceAllString(s, `"syncGeneration": "N"`)
	s = textGen.ReplaceAllString(s, "sync N of ")
	return textTime.ReplaceAllString(s, " at SYNC_TIME")
}

// Golden compares got with the file at path, or writes it there when
// update is set (the test's -update flag).
func Golden(t *testing.T, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (-update writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (-update rewrites it):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
