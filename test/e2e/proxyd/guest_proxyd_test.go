//go:build e2eguest

package proxyd

import (
	"bufio"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/daemonproc"
	"github.com/nodenet/nodenet/test/e2e/harness"
)

// newProxyd prepares proxyd in node0 (test/daemonproc): alone (--peers=,
// its node facts from the Node object), its /metrics at metricsAddr, its
// logs in the shared output directory. Make it after the relay: its
// cleanup (a kill, if still running) must come first.
func (e *env) newProxyd(t *testing.T) *daemonproc.Daemon {
	t.Helper()
	return daemonproc.New(t, daemonproc.Config{
		Daemon: "proxyd", Bin: harness.Binary(t, "proxyd"), Node: e.n0,
		Kubeconfig: harness.Kubeconfig(t, controlplane.Proxyd),
		Args:       []string{"--metrics-addr=" + metricsAddr, "--peers="},
		LogDir:     harness.Out(t),
	})
}

// startProxyd starts a new run of proxyd.
func (e *env) startProxyd(t *testing.T) {
	t.Helper()
	if err := e.proxyd.Start(); err != nil {
		t.Fatalf("start proxyd: %v", err)
	}
}

// stopProxyd sends SIGTERM and waits for a clean exit.
func (e *env) stopProxyd(t *testing.T) {
	t.Helper()
	if err := e.proxyd.Stop(); err != nil {
		t.Fatalf("%v; log:\n%s", err, e.proxydLog())
	}
}

// proxydLog is the end of proxyd's logs.
func (e *env) proxydLog() string { return e.proxyd.Logs(16 << 10) }

// cleanup runs `proxyd cleanup` in node0 (the n-th time) and checks it
// succeeds.
func (e *env) cleanup(t *testing.T, n int) {
	t.Helper()
	begin := time.Now()
	if err := e.proxyd.Cleanup(ctxFor(t, startTimeout)); err != nil {
		t.Fatal(err)
	}
	t.Logf("proxyd cleanup #%d took %v", n, time.Since(begin).Round(time.Millisecond))
}

// metrics are proxyd's Prometheus series: "name{labels}" → value.
type metrics map[string]float64

// writes are proxyd_kernel_writes_total by target.
type writes map[string]float64

// The targets of proxyd_kernel_writes_total.
const (
	writesIPVS     = "ipvs"
	writesRoutes   = "routes"
	writesNFTables = "nftables"
)

func (w writes) total() float64 {
	var n float64
	for _, v := range w {
		n += v
	}
	return n
}

func (w writes) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(w)) {
		parts = append(parts, fmt.Sprintf("%s=%g", k, w[k]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func (m metrics) writes() writes {
	w := writes{}
	for k, v := range m {
		if target, ok := strings.CutPrefix(k, `proxyd_kernel_writes_total{target="`); ok {
			w[strings.TrimSuffix(target, `"}`)] = v
		}
	}
	return w
}

// sum adds the values of every series of the metric name.
func (m metrics) sum(name string) float64 {
	var n float64
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			n += v
		}
	}
	return n
}

// fetchMetrics reads proxyd's /metrics in node0.
func (e *env) fetchMetrics() (metrics, error) {
	resp, err := e.http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

func (e *env) metrics(t *testing.T) metrics {
	t.Helper()
	m, err := e.fetchMetrics()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitSynced waits until proxyd has completed a sync and has no change
// pending, and returns its metrics then. A failed sync fails the test.
func (e *env) waitSynced(t *testing.T) metrics {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("proxyd's log:\n%s", e.proxydLog())
		}
	}()
	var m metrics
	waitFor(t, startTimeout, "proxyd synced", func() (bool, string) {
		if !e.proxyd.Running() {
			t.Fatalf("proxyd exited: %v; log:\n%s", e.proxyd.ExitError(), e.proxydLog())
		}
		var err error
		if m, err = e.fetchMetrics(); err != nil {
			return false, err.Error()
		}
		if f := m.sum("proxyd_sync_failures_total"); f > 0 {
			t.Fatalf("proxyd: %g failed syncs; log:\n%s", f, e.proxydLog())
		}
		if len(m.writes()) == 0 {
			t.Fatalf("proxyd exports no proxyd_kernel_writes_total")
		}
		syncs, pending := m.sum("proxyd_sync_duration_seconds_count"), m.sum("proxyd_changes_pending")
		return syncs >= 1 && pending == 0, fmt.Sprintf("%g syncs, %g pending", syncs, pending)
	})
	return m
}
