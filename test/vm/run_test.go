package vm_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/vm"
)

// These tests boot real VMs (about 3 s each under TCG); see
// vm.AssetsForTests for when they run.

// requireVM returns the assets to boot, or skips (vm.AssetsForTests).
// Called before t.Parallel, so only the first test may build the assets.
func requireVM(t *testing.T) vm.Assets {
	t.Helper()
	a, skip, err := vm.AssetsForTests(t.Context(), t.Output())
	if err != nil {
		t.Fatalf("CI=true: the VM must run: %v", err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	return a
}

// privateTempDir points os.TempDir (where Run makes its run directory) at a
// directory of this test, and checks at the end that Run left nothing
// there and no process that mentions it.
func privateTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	t.Cleanup(func() {
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("Run left %d entries in its temp dir, e.g. %s", len(entries), entries[0].Name())
		}
		if pids := processesMentioning(dir); len(pids) > 0 {
			t.Errorf("processes still running with %s on their command line: %v", dir, pids)
		}
	})
	return dir
}

func processesMentioning(s string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

func TestRunCommandInVM(t *testing.T) {
	a := requireVM(t)
	privateTempDir(t)
	shared, private, wd := t.TempDir(), t.TempDir(), t.TempDir()
	script := `
		echo "arg: $1"
		echo "value: $VALUE" >&2
		head -c 1048576 /dev/zero >&2
		pwd
		uname -r
		echo "in vm: $` + vm.GuestEnv + `"
		echo shared >"$SHARED/file"
		echo private >"$PRIVATE/file" && cat "$PRIVATE/file"
		exit 7`
	var stdout, stderr bytes.Buffer
	code, err := vm.Run(t.Context(), vm.Options{
		Command:      []string{"sh", "-c", script, "sh", "two words"},
		Env:          []string{"PATH=/usr/bin:/bin", "VALUE=it's \"quoted\"", "SHARED=" + shared, "PRIVATE=" + private},
		Dir:          wd,
		Stdout:       &stdout,
		Stderr:       &stderr,
		WritableDirs: []string{shared},
		Assets:       &a,
		Timeout:      2 * time.Minute,
	})
	if err != nil {
		t.Fatalf("Run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	if code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	wantOut := fmt.Sprintf("arg: two words\n%s\n%s\nin vm: 1\nprivate\n", wd, a.KernelRelease)
	if stdout.String() != wantOut {
		t.Errorf("stdout %q\nwant   %q", &stdout, wantOut)
	}
	// Every byte of a large output arrives, though the guest powers off
	// right after the command.
	if want := "value: it's \"quoted\"\n" + strings.Repeat("\x00", 1<<20); stderr.String() != want {
		t.Errorf("stderr: %d bytes starting %.40q, want %d bytes starting %.40q", stderr.Len(), &stderr, len(want), want)
	}
	if b, err := os.ReadFile(filepath.Join(shared, "file")); err != nil || string(b) != "shared\n" {
		t.Errorf("writable dir: host reads %q, %v", b, err)
	}
	// Anything else the guest writes stays in its tmpfs overlay.
	if _, err := os.Stat(filepath.Join(private, "file")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a guest write outside the writable dirs reached the host: %v", err)
	}
}

// signalWriter closes fired the first time the output contains marker.
type signalWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker string
	fired  chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.fired != nil && strings.Contains(w.buf.String(), w.marker) {
		close(w.fired)
		w.fired = nil
	}
	return len(p), nil
}

func TestRunCancelKillsVM(t *testing.T) {
	a := requireVM(t)
	privateTempDir(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan struct{})
	out := &signalWriter{marker: "started", fired: started}
	go func() {
		select {
		case <-started:
			cancel() // the command runs: kill the VM under it
		case <-ctx.Done():
		}
	}()
	code, err := vm.Run(ctx, vm.Options{
		Command: []string{"sh", "-c", "echo started; exec sleep 1000"},
		Stdout:  out,
		Assets:  &a,
		Timeout: 2 * time.Minute, // a safety net; the cancel comes first
	})
	if !errors.Is(err, context.Canceled) || code != -1 {
		t.Fatalf("Run = %d, %v; want -1 and context.Canceled", code, err)
	}
}

func TestRunTimeoutKillsVM(t *testing.T) {
	a := requireVM(t)
	privateTempDir(t)
	// The VM is killed while it boots: the timeout covers the boot too.
	code, err := vm.Run(t.Context(), vm.Options{
		Command: []string{"sleep", "1000"},
		Assets:  &a,
		Timeout: 300 * time.Millisecond,
	})
	if !errors.Is(err, context.DeadlineExceeded) || code != -1 {
		t.Fatalf("Run = %d, %v; want -1 and context.DeadlineExceeded", code, err)
	}
}

func TestRunSetupFailure(t *testing.T) {
	a := requireVM(t)
	t.Parallel()
	code, err := vm.Run(t.Context(), vm.Options{
		Command: []string{"true"},
		Modules: []string{"dummy", "no_such_module"},
		Assets:  &a,
		Timeout: 2 * time.Minute,
	})
	if err == nil || !strings.Contains(err.Error(), "cannot load module no_such_module") || code != -1 {
		t.Fatalf("Run = %d, %v; want -1 and the module named", code, err)
	}
}

// TestRunForwardReachesHostLoopback: a TCP server on the host's 127.0.0.1,
// reached from the guest through a Forward, over two guest connections
// open at once, each its own host connection. The guest side is this test
// binary itself (TestGuestDial).
func TestRunForwardReachesHostLoopback(t *testing.T) {
	a := requireVM(t)
	t.Parallel()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = fmt.Fprintf(c, "host got %s", line)
				_ = c.Close()
			}()
		}
	}()

	const guestPort = 6443
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var output bytes.Buffer // stdout and stderr in one buffer, as exec.Cmd allows
	code, err := vm.Run(t.Context(), vm.Options{
		Command:  []string{exe, "-test.run=^TestGuestDial$", "-test.v"},
		Env:      append(os.Environ(), "NODENET_VMTEST_DIAL="+net.JoinHostPort(vm.ForwardAddr, fmt.Sprint(guestPort))),
		Stdout:   &output,
		Stderr:   &output,
		Forwards: []vm.Forward{{GuestPort: guestPort, Host: l.Addr().String()}},
		Assets:   &a,
		Timeout:  2 * time.Minute,
	})
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v\noutput:\n%s", code, err, &output)
	}
	for _, want := range []string{"answer 1: host got hello 1 from the guest", "answer 2: host got hello 2 from the guest"} {
		if !strings.Contains(output.String(), want) {
			t.Errorf("the guest did not reach the host's server (%q):\n%s", want, &output)
		}
	}
	if n := accepted.Load(); n != 2 {
		t.Errorf("the host accepted %d connections, want 2: one per guest connection", n)
	}
}

// TestGuestDial is the guest half of TestRunForwardReachesHostLoopback;
// it does nothing unless that test runs it in the VM.
func TestGuestDial(t *testing.T) {
	addr := os.Getenv("NODENET_VMTEST_DIAL")
	if addr == "" {
		t.Skip("the guest half of TestRunForwardReachesHostLoopback")
	}
	// Two connections open at once; the second one asks first.
	var conns []net.Conn
	for range 2 {
		d := net.Dialer{Timeout: 30 * time.Second}
		c, err := d.DialContext(t.Context(), "tcp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		conns = append(conns, c)
	}
	for _, i := range []int{2, 1} {
		c := conns[i-1]
		if _, err := fmt.Fprintf(c, "hello %d from the guest\n", i); err != nil {
			t.Fatal(err)
		}
		answer, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("answer %d: %s", i, answer)
	}
}

// TestRunRejectsBadOptions: mistakes are reported before anything boots
// (QEMU here does not exist).
func TestRunRejectsBadOptions(t *testing.T) {
	a := &vm.Assets{Kernel: "/nonexistent", Initramfs: "/nonexistent"}
	dir := t.TempDir()
	for name, o := range map[string]vm.Options{
		"no command":       {},
		"unknown command":  {Command: []string{"no-such-command-anywhere"}},
		"missing dir":      {Command: []string{"true"}, Dir: filepath.Join(dir, "missing")},
		"relative share":   {Command: []string{"true"}, WritableDirs: []string{"relative"}},
		"missing share":    {Command: []string{"true"}, WritableDirs: []string{filepath.Join(dir, "missing")}},
		"bad forward":      {Command: []string{"true"}, Forwards: []vm.Forward{{GuestPort: 1, Host: "nowhere"}}},
		"bad module name":  {Command: []string{"true"}, Modules: []string{"x;reboot"}},
		"no such emulator": {Command: []string{"true"}},
	} {
		o.Assets = a
		o.QEMU = "/nonexistent/qemu-system-x86_64"
		code, err := vm.Run(t.Context(), o)
		if err == nil || code != -1 {
			t.Errorf("%s: Run = %d, %v; want -1 and an error", name, code, err)
		}
	}
}
