package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/testutil"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// Test conventions: daemons run in-process on sockets in a fresh short
// temporary run dir, metrics on 127.0.0.1:0; waits poll a condition with a
// deadline.

func shortRunDir(t *testing.T) string { return testutil.SocketDir(t) }

func testConfig(name, runDir string) config.Common {
	cfg := config.DefaultCommon(name, 0, "node-1")
	cfg.RunDir = runDir
	cfg.MetricsAddr = "127.0.0.1:0"
	cfg.SyncMinInterval = 10 * time.Millisecond
	return cfg
}

func startDaemon(t *testing.T, spec Spec, cfg config.Common) *Daemon {
	t.Helper()
	d, err := New(spec, cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(spec.Name))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = d.Stop(context.Background())
		}
	})
	return d
}

func stopDaemon(t *testing.T, d *Daemon) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 15*time.Second, what, nil, cond)
}

type cmdResult struct {
	code           int
	stdout, stderr string
}

func runMain(spec Spec, args ...string) cmdResult {
	var out, errOut bytes.Buffer
	code := Main(spec, Env{
		Args:      args,
		LookupEnv: func(string) (string, bool) { return "", false },
		Stdout:    &out, Stderr: &errOut, Hostname: "node-1",
	})
	return cmdResult{code, out.String(), errOut.String()}
}

type statusJSON struct {
	Daemons []struct {
		Daemon    string `json:"daemon"`
		Reachable bool   `json:"reachable"`
		Health    string `json:"health"`
		Error     string `json:"error"`
		Status    struct {
			Daemon string `json:"daemon"`
			Build  struct {
				Version   string `json:"version"`
				GoVersion string `json:"goVersion"`
			} `json:"build"`
			Healthy bool `json:"healthy"`
			Peers   []struct {
				Name      string `json:"name"`
				Connected bool   `json:"connected"`
			} `json:"peers"`
			Sync struct {
				LastError string `json:"lastError"`
				Syncs     string `json:"syncs"`
			} `json:"sync"`
		} `json:"status"`
	} `json:"daemons"`
}

func statusOf(t *testing.T, runDir string, extra ...string) (cmdResult, statusJSON) {
	t.Helper()
	res := runMain(Spec{Name: "routerd"}, append([]string{"status", "-o", "json", "--run-dir", runDir}, extra...)...)
	var st statusJSON
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("status output is not JSON (%v):\n%s\nstderr: %s", err, res.stdout, res.stderr)
	}
	return res, st
}

func allPeersConnected(st statusJSON) bool {
	for _, d := range st.Daemons {
		if !d.Reachable || len(d.Status.Peers) != 2 {
			return false
		}
		for _, p := range d.Status.Peers {
			if !p.Connected {
				return false
			}
		}
	}
	return len(st.Daemons) == 3
}

func TestStatusOfThreeDaemons(t *testing.T) {
	runDir := shortRunDir(t)
	daemons := map[string]*Daemon{}
	for _, name := range config.Daemons() {
		daemons[name] = startDaemon(t, Spec{Name: name}, testConfig(name, runDir))
	}

	var st statusJSON
	var res cmdResult
	eventually(t, "all three daemons to see each other", func() bool {
		res, st = statusOf(t, runDir)
		return allPeersConnected(st)
	})
	if res.code != ExitOK {
		t.Fatalf("status exit %d with all daemons up; stderr: %s", res.code, res.stderr)
	}
	for i, name := range config.Daemons() {
		d := st.Daemons[i]
		if d.Daemon != name || d.Status.Daemon != name || d.Health != "SERVING" || !d.Status.Healthy ||
			d.Status.Build.Version == "" || !strings.HasPrefix(d.Status.Build.GoVersion, "go") {
			t.Errorf("daemon %d: %+v", i, d)
		}
	}

	stopDaemon(t, daemons["proxyd"])
	res, st = statusOf(t, runDir)
	if res.code == ExitOK {
		t.Fatalf("status exit 0 with proxyd stopped:\n%s", res.stdout)
	}
	if !strings.Contains(res.stderr, "proxyd") {
		t.Fatalf("stderr does not name proxyd: %q", res.stderr)
	}
	if d := st.Daemons[1]; d.Daemon != "proxyd" || d.Reachable || d.Health != "UNREACHABLE" {
		t.Fatalf("proxyd after stop: %+v", d)
	}
	if st.Daemons[0].Health != "SERVING" || st.Daemons[2].Health != "SERVING" {
		t.Fatalf("a neighbour's stop made the others unhealthy: %+v", st.Daemons)
	}

	// Asking only for the daemons enabled on the node succeeds again.
	if res, _ := statusOf(t, runDir, "--daemons", "routerd,firewalld"); res.code != ExitOK {
		t.Fatalf("status of the running daemons: exit %d, stderr %s", res.code, res.stderr)
	}
	// The table names the stopped daemon too.
	tab := runMain(Spec{Name: "firewalld"}, "status", "--run-dir", runDir)
	if tab.code != ExitFailure || !strings.Contains(tab.stdout, "proxyd     UNREACHABLE") {
		t.Fatalf("table status: exit %d\n%s", tab.code, tab.stdout)
	}
}

// failing is a controller whose syncs fail, standing in for a kernel that
// refuses every change.
type failing struct{ syncs atomic.Int32 }

func (f *failing) Start(context.Context) error { return nil }
func (f *failing) Sync(context.Context, bool) error {
	f.syncs.Add(1)
	return errors.New("netlink: operation not permitted")
}
func (f *failing) Counts() map[string]uint64 { return map[string]uint64{"services": 3} }

func TestUnappliedChangesMakeTheDaemonUnhealthy(t *testing.T) {
	runDir := shortRunDir(t)
	ctrl := &failing{}
	cfg := testConfig("proxyd", runDir)
	cfg.Peers = nil
	cfg.HealthTimeout = 100 * time.Millisecond
	d := startDaemon(t, Spec{Name: "proxyd", NewController: func(Deps) (Controller, error) { return ctrl, nil }}, cfg)

	var st statusJSON
	var res cmdResult
	eventually(t, "the daemon to turn unhealthy", func() bool {
		res, st = statusOf(t, runDir, "--daemons", "proxyd")
		return len(st.Daemons) == 1 && st.Daemons[0].Health == "NOT_SERVING"
	})
	if res.code != ExitFailure || !strings.Contains(res.stderr, "proxyd") {
		t.Fatalf("status exit %d, stderr %q", res.code, res.stderr)
	}
	if got := st.Daemons[0].Status.Sync.LastError; got != "netlink: operation not permitted" {
		t.Fatalf("last error %q", got)
	}
	eventually(t, "the failed sync to be retried", func() bool { return ctrl.syncs.Load() >= 2 })

	// The same verdict over HTTP, while the process is alive.
	base := "http://" + d.MetricsAddr().String()
	if code, _ := get(t, base+"/healthz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz = %d", code)
	}
	if code, _ := get(t, base+"/livez"); code != http.StatusOK {
		t.Fatalf("/livez = %d", code)
	}
	code, body := get(t, base+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "proxyd_sync_failures_total") || !strings.Contains(body, "proxyd_changes_pending 1") {
		t.Fatalf("/metrics = %d:\n%s", code, body)
	}
}

func TestHealthyDaemonServesMetrics(t *testing.T) {
	runDir := shortRunDir(t)
	cfg := testConfig("firewalld", runDir)
	cfg.Peers = nil
	d := startDaemon(t, Spec{Name: "firewalld"}, cfg)
	base := "http://" + d.MetricsAddr().String()
	eventually(t, "the first sync", func() bool {
		_, body := get(t, base+"/metrics")
		return strings.Contains(body, "firewalld_changes_pending 0") && strings.Contains(body, "firewalld_last_sync_timestamp_seconds")
	})
	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz = %d", code)
	}
}

// Profiles are served only with --profiling.
func TestProfilingOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		runDir := shortRunDir(t)
		cfg := testConfig("firewalld", runDir)
		cfg.Peers, cfg.Profiling = nil, on
		d := startDaemon(t, Spec{Name: "firewalld"}, cfg)
		base := "http://" + d.MetricsAddr().String()
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
			if code, _ := get(t, base+path); code != want {
				t.Errorf("profiling %v: %s = %d, want %d", on, path, code, want)
			}
		}
	}
}

func TestSecondInstanceRefusesToStart(t *testing.T) {
	runDir := shortRunDir(t)
	cfg := testConfig("routerd", runDir)
	cfg.Peers = nil
	startDaemon(t, Spec{Name: "routerd"}, cfg)
	d2, err := New(Spec{Name: "routerd"}, cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	err = d2.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "already served") {
		t.Fatalf("second routerd started: %v", err)
	}
	// Its failed start left the first one serving.
	if res, _ := statusOf(t, runDir, "--daemons", "routerd"); res.code != ExitOK {
		t.Fatalf("first routerd broken: %s", res.stderr)
	}
}

func TestCommands(t *testing.T) {
	spec := Spec{Name: "proxyd"}
	if r := runMain(spec, "version"); r.code != ExitOK || !strings.HasPrefix(r.stdout, "proxyd dev (commit ") {
		t.Fatalf("version: %+v", r)
	}
	r := runMain(spec, "version", "-o", "json")
	var v struct{ Daemon, Version, GoVersion string }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Daemon != "proxyd" || v.Version == "" || v.GoVersion == "" {
		t.Fatalf("version -o json: %+v %v", r, err)
	}
	if r := runMain(spec, "frobnicate"); r.code != ExitUsage || !strings.Contains(r.stderr, "unknown command") {
		t.Fatalf("unknown command: %+v", r)
	}
	if r := runMain(spec, "run", "--log-format", "xml", "--run-dir", shortRunDir(t)); r.code != ExitUsage || !strings.Contains(r.stderr, "--log-format") {
		t.Fatalf("bad flag value: %+v", r)
	}
	if r := runMain(spec, "--no-such-flag"); r.code != ExitUsage {
		t.Fatalf("unknown flag: %+v", r)
	}
	if r := runMain(spec, "status", "--help"); r.code != ExitOK || !strings.Contains(r.stderr, "$NODENET_RUN_DIR") {
		t.Fatalf("status --help: %+v", r)
	}
	if r := runMain(spec, "cleanup", "--run-dir", shortRunDir(t)); r.code != ExitOK || !strings.Contains(r.stderr, "nothing to clean up") {
		t.Fatalf("cleanup: %+v", r)
	}
	if r := runMain(spec, "prepare"); r.code != ExitOK || !strings.Contains(r.stderr, "nothing to prepare") {
		t.Fatalf("prepare: %+v", r)
	}
}

// prepare parses the daemon's own flags, runs Prepare with them, and
// fails when Prepare fails.
func TestPrepareRunsWithTheDaemonsFlags(t *testing.T) {
	var strict bool
	var got []bool
	fail := false
	spec := Spec{
		Name:  "proxyd",
		Flags: func(fs *pflag.FlagSet) { fs.BoolVar(&strict, "strict-arp", false, "strict ARP") },
		Prepare: func(_ context.Context, _ *zap.Logger, cfg config.Common) error {
			got = append(got, strict)
			if fail {
				return errors.New("permission denied")
			}
			return nil
		},
	}
	if r := runMain(spec, "prepare", "--strict-arp"); r.code != ExitOK || !strings.Contains(r.stderr, "prepared") {
		t.Fatalf("prepare: %+v", r)
	}
	fail = true
	if r := runMain(spec, "prepare"); r.code != ExitFailure || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("failing prepare: %+v", r)
	}
	if len(got) != 2 || !got[0] || got[1] {
		t.Fatalf("Prepare saw --strict-arp %v, want [true false]", got)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestDaemonFlagsAreParsedAndValidated(t *testing.T) {
	var scheduler string
	spec := Spec{
		Name:  "proxyd",
		Flags: func(fs *pflag.FlagSet) { fs.StringVar(&scheduler, "ipvs-scheduler", "rr", "default scheduler") },
		Validate: func() error {
			if scheduler != "rr" && scheduler != "lc" {
				return errors.New("--ipvs-scheduler: unknown scheduler " + scheduler)
			}
			return nil
		},
	}
	r := runMain(spec, "run", "--ipvs-scheduler", "fastest", "--run-dir", shortRunDir(t))
	if r.code != ExitUsage || !strings.Contains(r.stderr, "unknown scheduler fastest") {
		t.Fatalf("bad daemon flag: %+v", r)
	}
	if r := runMain(spec, "run", "--help"); r.code != ExitOK || !strings.Contains(r.stderr, "$NODENET_IPVS_SCHEDULER") {
		t.Fatalf("run --help does not document the daemon flag: %+v", r)
	}
}

func TestSpecSyncMinIntervalDefault(t *testing.T) {
	if got := (Spec{Name: "x"}).defaults(Env{}).SyncMinInterval; got != time.Second {
		t.Errorf("default --sync-min-interval %v, want the shared 1s", got)
	}
	if got := (Spec{Name: "x", SyncMinInterval: 100 * time.Millisecond}).defaults(Env{}).SyncMinInterval; got != 100*time.Millisecond {
		t.Errorf("a daemon's own default: %v, want 100ms", got)
	}
}
