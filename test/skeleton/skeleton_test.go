// Package skeleton tests the daemon skeleton (test/cmd/skeletond, linked
// as routerd, proxyd and firewalld) as three processes on one node: their
// sockets, `status`, signals, and what a restart or a crash of one of them
// does to the others. The real daemons share all of it; their datapaths are
// tested by their own end-to-end tests. Everything runs in a fresh temporary run dir;
// metrics listen on 127.0.0.1:0; nothing else on the machine is touched.
package skeleton

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/binaries"
)

// skeletons are the paths of the three linked skeleton binaries.
var skeletons map[string]string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nodenet-bin")
	if err != nil {
		panic(err)
	}
	if skeletons, err = binaries.Skeletons(dir); err != nil {
		_ = os.RemoveAll(dir)
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type node struct {
	t      *testing.T
	runDir string
	paths  map[string]string
	procs  map[string]*exec.Cmd
	logs   map[string]*bytes.Buffer
}

func newNode(t *testing.T) *node {
	paths := skeletons
	runDir, err := os.MkdirTemp("", "nn")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, runDir: runDir, paths: paths, procs: map[string]*exec.Cmd{}, logs: map[string]*bytes.Buffer{}}
	t.Cleanup(func() {
		for name, p := range n.procs {
			if p.ProcessState == nil {
				_ = p.Process.Kill()
				_ = p.Wait()
			}
			if t.Failed() {
				t.Logf("%s log:\n%s", name, n.logs[name])
			}
		}
		_ = os.RemoveAll(runDir)
	})
	return n
}

func (n *node) env() []string {
	return append(os.Environ(), "NODENET_RUN_DIR="+n.runDir, "NODENET_NODE_NAME=node-1",
		"NODENET_METRICS_ADDR=127.0.0.1:0", "NODENET_LOG_FORMAT=console", "NODENET_SYNC_MIN_INTERVAL=10ms")
}

func (n *node) start(name string) {
	n.t.Helper()
	cmd := exec.Command(n.paths[name], "run")
	cmd.Env = n.env()
	buf := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.procs[name], n.logs[name] = cmd, buf
}

// stop sends sig and waits for the process; it returns the exit code.
func (n *node) stop(name string, sig syscall.Signal) int {
	n.t.Helper()
	p := n.procs[name]
	if err := p.Process.Signal(sig); err != nil {
		n.t.Fatal(err)
	}
	err := p.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		n.t.Fatal(err)
		return -1
	}
}

type report struct {
	Daemon string `json:"daemon"`
	Health string `json:"health"`
	Error  string `json:"error"`
	Status struct {
		Build struct {
			Version string `json:"version"`
			Commit  string `json:"commit"`
		} `json:"build"`
		Incarnation string `json:"incarnation"`
		Peers       []struct {
			Name        string `json:"name"`
			Connected   bool   `json:"connected"`
			Incarnation string `json:"incarnation"`
		} `json:"peers"`
	} `json:"status"`
}

// status runs `<via> status -o json` and returns its exit code, reports and stderr.
func (n *node) status(via string) (int, map[string]report, string) {
	n.t.Helper()
	cmd := exec.Command(n.paths[via], "status", "-o", "json")
	cmd.Env = n.env()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	code := 0
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			n.t.Fatal(err)
		}
		code = exit.ExitCode()
	}
	var doc struct {
		Daemons []report `json:"daemons"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		n.t.Fatalf("status output: %v\n%s", err, out.String())
	}
	reports := map[string]report{}
	for _, r := range doc.Daemons {
		reports[r.Daemon] = r
	}
	return code, reports, errOut.String()
}

// meshUp: every daemon serving and connected to both others.
func meshUp(reports map[string]report) bool {
	for _, d := range binaries.Daemons() {
		r := reports[d]
		if r.Health != "SERVING" || len(r.Status.Peers) != 2 {
			return false
		}
		for _, p := range r.Status.Peers {
			if !p.Connected || p.Incarnation != reports[p.Name].Status.Incarnation {
				return false
			}
		}
	}
	return true
}

func (n *node) eventually(what string, cond func() bool) {
	n.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			n.t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func TestThreeDaemonsOnOneNode(t *testing.T) {
	n := newNode(t)
	for _, d := range binaries.Daemons() {
		n.start(d)
	}
	var reports map[string]report
	n.eventually("the three daemons to serve and see each other", func() bool {
		_, reports, _ = n.status("routerd")
		return meshUp(reports)
	})
	code, reports, _ := n.status("firewalld")
	if code != 0 {
		t.Fatalf("status exit %d with all up", code)
	}
	for _, d := range binaries.Daemons() {
		if v := reports[d].Status.Build; v.Version != binaries.TestVersion || v.Commit != "e2e" {
			t.Errorf("%s reports build %+v, want %s/e2e", d, v, binaries.TestVersion)
		}
		fi, err := os.Stat(filepath.Join(n.runDir, d+".sock"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s socket: %v %v", d, fi, err)
		}
	}

	// SIGTERM: a clean exit, and status names the missing daemon.
	if code := n.stop("proxyd", syscall.SIGTERM); code != 0 {
		t.Fatalf("proxyd exit %d after SIGTERM", code)
	}
	code, reports, stderr := n.status("routerd")
	if code == 0 || reports["proxyd"].Health != "UNREACHABLE" || !strings.Contains(stderr, "proxyd") {
		t.Fatalf("status after stopping proxyd: exit %d, %+v, stderr %q", code, reports["proxyd"], stderr)
	}
	if reports["routerd"].Health != "SERVING" || reports["firewalld"].Health != "SERVING" {
		t.Fatalf("neighbours unhealthy after proxyd stopped: %+v", reports)
	}

	// Upgrade-style restart: the others reconnect to the new incarnation.
	n.start("proxyd")
	n.eventually("the mesh to re-form after proxyd restarted", func() bool {
		_, reports, _ = n.status("routerd")
		return meshUp(reports)
	})

	// A crash (SIGKILL) leaves the socket file behind; the next start
	// replaces it.
	n.stop("firewalld", syscall.SIGKILL)
	if _, err := os.Stat(filepath.Join(n.runDir, "firewalld.sock")); err != nil {
		t.Fatalf("SIGKILL should leave the socket file: %v", err)
	}
	n.start("firewalld")
	n.eventually("the mesh to re-form after firewalld crashed and restarted", func() bool {
		_, reports, _ = n.status("proxyd")
		return meshUp(reports)
	})

	for _, d := range binaries.Daemons() {
		if code := n.stop(d, syscall.SIGTERM); code != 0 {
			t.Errorf("%s exit %d after SIGTERM", d, code)
		}
		if _, err := os.Stat(filepath.Join(n.runDir, d+".sock")); !os.IsNotExist(err) {
			t.Errorf("%s left its socket after a clean stop: %v", d, err)
		}
	}
}

func TestSecondCopyOfADaemonExits(t *testing.T) {
	n := newNode(t)
	n.start("routerd")
	n.eventually("routerd to serve", func() bool {
		_, reports, _ := n.status("routerd")
		return reports["routerd"].Health == "SERVING"
	})
	cmd := exec.Command(n.paths["routerd"], "run")
	cmd.Env = n.env()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "already served") {
		t.Fatalf("second routerd: %v\n%s", err, out)
	}
	if _, reports, _ := n.status("routerd"); reports["routerd"].Health != "SERVING" {
		t.Fatalf("first routerd hurt by the second: %+v", reports["routerd"])
	}
}
