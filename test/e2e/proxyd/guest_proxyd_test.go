//go:build e2eguest

package proxyd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proxydProc is the proxyd binary running in node0's namespace.
type proxydProc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // Wait's, once done is closed
}

// proxydEnv is proxyd's whole environment: nothing of the test's, whose
// NODENET_* variables proxyd would read as flags.
func proxydEnv() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
}

// startProxyd starts `proxyd run` in node0, logging to a file of the
// shared output directory. It is killed when TestGuest ends, if still
// running.
func (e *env) startProxyd(t *testing.T) *proxydProc {
	t.Helper()
	e.runs++
	p := &proxydProc{log: filepath.Join(e.out, fmt.Sprintf("proxyd-run%d.log", e.runs)), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(e.proxydBin, "run",
		"--kubeconfig="+e.proxydKubeconfig,
		"--node-name="+e.n0.Name,
		"--run-dir="+e.runDir,
		"--metrics-addr="+metricsAddr,
		"--peers=", // proxyd alone: node facts from the Node object
		"--log-format=console")
	p.cmd.Env = proxydEnv()
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// No Pdeathsig: it would fire when the thread that started proxyd
	// (NetNS.Start's, thrown away at once) exits.
	if err := e.n0.Start(p.cmd); err != nil {
		_ = f.Close()
		t.Fatalf("start proxyd: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	e.t.Cleanup(p.kill)
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proxydProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(startTimeout):
		t.Fatalf("proxyd did not stop within %v of SIGTERM; log:\n%s", startTimeout, p.tail())
	}
	if p.err != nil {
		t.Fatalf("proxyd exited with %v after SIGTERM; log:\n%s", p.err, p.tail())
	}
}

func (p *proxydProc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proxydProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail is the end of proxyd's log.
func (p *proxydProc) tail() string { return tailOf(p.log, 16<<10) }

func tailOf(path string, limit int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > limit {
		_, _ = f.Seek(-limit, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// cleanup runs `proxyd cleanup` in node0 (the n-th time) and checks it
// succeeds.
func (e *env) cleanup(t *testing.T, n int) {
	t.Helper()
	log := filepath.Join(e.out, fmt.Sprintf("proxyd-cleanup%d.log", n))
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e.proxydBin, "cleanup", "--node-name="+e.n0.Name, "--run-dir="+e.runDir, "--kubeconfig="+e.proxydKubeconfig)
	cmd.Env = proxydEnv()
	cmd.Stdout, cmd.Stderr = f, f
	begin := time.Now()
	if err := e.n0.Start(cmd); err != nil {
		_ = f.Close()
		t.Fatal(err)
	}
	err = cmd.Wait()
	_ = f.Close()
	if err != nil {
		t.Fatalf("proxyd cleanup: %v; output:\n%s", err, tailOf(log, 16<<10))
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
			t.Logf("proxyd's log:\n%s", e.proxyd.tail())
		}
	}()
	var m metrics
	waitFor(t, startTimeout, "proxyd synced", func() (bool, string) {
		if e.proxyd.exited() {
			t.Fatalf("proxyd exited: %v; log:\n%s", e.proxyd.err, e.proxyd.tail())
		}
		var err error
		if m, err = e.fetchMetrics(); err != nil {
			return false, err.Error()
		}
		if f := m.sum("proxyd_sync_failures_total"); f > 0 {
			t.Fatalf("proxyd: %g failed syncs; log:\n%s", f, e.proxyd.tail())
		}
		if len(m.writes()) == 0 {
			t.Fatalf("proxyd exports no proxyd_kernel_writes_total")
		}
		syncs, pending := m.sum("proxyd_sync_duration_seconds_count"), m.sum("proxyd_changes_pending")
		return syncs >= 1 && pending == 0, fmt.Sprintf("%g syncs, %g pending", syncs, pending)
	})
	return m
}
