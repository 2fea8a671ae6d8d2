// Package daemonproc runs a nodenet daemon (routerd, proxyd, firewalld) as
// a real process inside a node namespace of a test topology (test/netns),
// the way the DaemonSet runs it on a node: `<daemon> run` with the node's
// name, a service account's kubeconfig and a run directory of its own, in
// the node's network namespace (hostNetwork). The test starts, stops
// (SIGTERM), kills (-9) and restarts it, possibly with another build, asks
// it for its status over its unix socket (`<daemon> status -o json`), and
// gets the end of every run's log in its output when it fails (always,
// with NODENET_DAEMON_LOGS=1).
//
//	relay := daemonproc.StartAPIRelay(t, node, cp.URL)       // the API inside the node
//	d := daemonproc.New(t, daemonproc.Config{Daemon: "routerd", Bin: bins["routerd"],
//		Node: node, Kubeconfig: cp.Kubeconfig(controlplane.Routerd), Args: []string{"--peers="}})
//	if err := d.Start(); err != nil { ... }
//	if err := d.WaitReady(ctx); err != nil { ... }             // first sync done
//	st, err := d.Status(ctx)
//
// A daemon's kubeconfig names the apiserver as https://127.0.0.1:<port>:
// StartAPIRelay listens at that address inside the node and forwards to
// the apiserver on the host's loopback. One relay serves every daemon of a
// node.
//
// The process gets an environment of its own (PATH only): the test's
// NODENET_* variables would otherwise be read as flags. It has no
// Pdeathsig (it would fire when the thread that started it, thrown away by
// NetNS.Start, exits): the test kills it in its cleanup.
package daemonproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/netns"
)

const (
	// StopTimeout bounds a stop after SIGTERM.
	StopTimeout = 30 * time.Second
	// LogDumpLimit bounds how much of each run's log a failed test prints.
	LogDumpLimit = 64 << 10
	// statusTimeout is the status command's --timeout.
	statusTimeout = 2 * time.Second
	// pollInterval paces WaitReady and WaitStatus.
	pollInterval = 50 * time.Millisecond
)

// Config describes a daemon of one node.
type Config struct {
	// Daemon is its name: "routerd", "proxyd" or "firewalld".
	Daemon string
	// Bin is the binary (test/binaries builds it); Use changes it.
	Bin string
	// Node is the node it runs in.
	Node *netns.Node
	// Kubeconfig is its --kubeconfig (controlplane.Kubeconfig of its
	// identity); the apiserver must be reachable inside the node
	// (StartAPIRelay).
	Kubeconfig string
	// Args are more flags of `run`, after --node-name, --kubeconfig,
	// --run-dir and --log-format=console (--peers= makes it run alone);
	// Use changes them.
	Args []string
	// RunDir holds its unix socket. "" makes a fresh directory with a
	// short path (sun_path holds 108 bytes), removed when the test ends.
	// Daemons of one node that watch each other share one.
	RunDir string
	// LogDir holds one log file per run. "" is a temporary directory of
	// the test.
	LogDir string
}

// Daemon is one daemon of a node, started and restarted by the test. Its
// methods are safe for concurrent use.
type Daemon struct {
	name, kubeconfig string
	node             *netns.Node
	runDir, logDir   string

	mu   sync.Mutex
	bin  string
	args []string
	runs int
	proc *run // the current run, nil before the first
}

// run is one run of the process.
type run struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's, once done is closed
}

// New prepares the daemon of cfg.Node; nothing runs before Start. When t
// ends the process is killed (if still running) and, when t failed, the
// end of each run's log goes to t's output.
func New(t testing.TB, cfg Config) *Daemon {
	t.Helper()
	if cfg.Daemon == "" || cfg.Bin == "" || cfg.Node == nil {
		t.Fatalf("daemonproc: Daemon, Bin and Node are required (%+v)", cfg)
	}
	d := &Daemon{
		name: cfg.Daemon, kubeconfig: cfg.Kubeconfig, node: cfg.Node,
		runDir: cfg.RunDir, logDir: cfg.LogDir,
		bin: cfg.Bin, args: append([]string(nil), cfg.Args...),
	}
	if d.runDir == "" {
		dir, err := os.MkdirTemp("", "nn"+cfg.Daemon[:min(2, len(cfg.Daemon))])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		d.runDir = dir
	}
	if d.logDir == "" {
		d.logDir = t.TempDir()
	}
	t.Cleanup(func() {
		d.Kill()
		if t.Failed() || os.Getenv("NODENET_DAEMON_LOGS") == "1" {
			t.Logf("----- %s on %s: end of its logs -----\n%s", d.name, d.node.Name, d.Logs(LogDumpLimit))
		}
	})
	return d
}

// StartAPIRelay makes the apiserver at apiURL (https://127.0.0.1:<port>,
// on the test's loopback) reachable at the same address inside node n,
// until t ends. Call it before New, so that its cleanup runs after the
// daemons' (cleanups run last first).
func StartAPIRelay(t testing.TB, n *netns.Node, apiURL string) *netns.Relay {
	t.Helper()
	u, err := url.Parse(apiURL)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", u.Port())
	r, err := n.StartRelay(addr, addr, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Name is the daemon's name.
func (d *Daemon) Name() string { return d.name }

// Node is the node it runs in.
func (d *Daemon) Node() *netns.Node { return d.node }

// RunDir is the directory of its socket.
func (d *Daemon) RunDir() string { return d.runDir }

// Socket is the path of its unix socket.
func (d *Daemon) Socket() string { return filepath.Join(d.runDir, d.name+".sock") }

// Binary is the binary and the extra flags of the next run.
func (d *Daemon) Binary() (bin string, args []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bin, append([]string(nil), d.args...)
}

// Use sets the binary and the extra flags of the next runs (an upgrade).
func (d *Daemon) Use(bin string, args []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.bin, d.args = bin, append([]string(nil), args...)
}

// env is the daemon's whole environment: nothing of the test's, whose
// NODENET_* variables it would read as flags.
func env() []string {
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
}

// Start starts a new run in the node's namespace, logging to a file of its
// own. It returns once the process is started, not once it is ready
// (WaitReady).
func (d *Daemon) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.proc != nil && !d.proc.exited() {
		return fmt.Errorf("%s on %s is already running", d.name, d.node.Name)
	}
	d.runs++
	f, err := os.Create(d.logPath(d.runs))
	if err != nil {
		return err
	}
	p := &run{done: make(chan struct{})}
	p.cmd = exec.Command(d.bin, "run",
		"--node-name="+d.node.Name,
		"--kubeconfig="+d.kubeconfig,
		"--run-dir="+d.runDir,
		"--log-format=console")
	p.cmd.Args = append(p.cmd.Args, d.args...)
	p.cmd.Env = env()
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := d.node.Start(p.cmd); err != nil {
		_ = f.Close()
		return fmt.Errorf("start %s on %s: %w", d.name, d.node.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = f.Close()
		close(p.done)
	}()
	d.proc = p
	return nil
}

func (d *Daemon) logPath(n int) string {
	return filepath.Join(d.logDir, fmt.Sprintf("%s-%s-run%d.log", d.name, d.node.Name, n))
}

func (d *Daemon) current() *run {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.proc
}

// Running reports whether a run is alive.
func (d *Daemon) Running() bool {
	p := d.current()
	return p != nil && !p.exited()
}

// PID is the current run's process id (0 before the first).
func (d *Daemon) PID() int {
	if p := d.current(); p != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

// ExitError is how the current run ended: nil while it runs or when it
// exited with status 0.
func (d *Daemon) ExitError() error {
	p := d.current()
	if p == nil || !p.exited() {
		return nil
	}
	return p.err
}

// Stop sends SIGTERM and waits for a clean exit (status 0) within
// StopTimeout; past it the process is killed and Stop fails. A daemon
// leaves its datapath as it is on SIGTERM.
func (d *Daemon) Stop() error {
	p := d.current()
	if p == nil || p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		p.kill()
		return fmt.Errorf("%s on %s did not stop within %v of SIGTERM", d.name, d.node.Name, StopTimeout)
	}
	if p.err != nil {
		return fmt.Errorf("%s on %s exited with %v after SIGTERM", d.name, d.node.Name, p.err)
	}
	return nil
}

// Kill ends the current run at once (SIGKILL), if any, and waits for it.
func (d *Daemon) Kill() {
	if p := d.current(); p != nil {
		p.kill()
	}
}

func (p *run) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *run) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Cleanup runs `<daemon> cleanup` in the node with the node's name, the
// kubeconfig, the run directory and args: everything the daemon owns
// there goes.
func (d *Daemon) Cleanup(ctx context.Context, args ...string) error {
	bin, _ := d.Binary()
	cmd := exec.CommandContext(ctx, bin, append([]string{"cleanup", "--node-name=" + d.node.Name,
		"--kubeconfig=" + d.kubeconfig, "--run-dir=" + d.runDir}, args...)...)
	cmd.Env = env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := d.node.Start(cmd); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s cleanup on %s: %v\n%s", d.name, d.node.Name, err, out.Bytes())
	}
	return nil
}

// Logs is the end (limit bytes) of every run's log, oldest run first.
func (d *Daemon) Logs(limit int64) string {
	d.mu.Lock()
	runs := d.runs
	d.mu.Unlock()
	var b bytes.Buffer
	for i := 1; i <= runs; i++ {
		path := d.logPath(i)
		fmt.Fprintf(&b, "--- run %d (%s) ---\n%s", i, filepath.Base(path), tail(path, limit))
	}
	return b.String()
}

func tail(path string, limit int64) string {
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
