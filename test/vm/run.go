package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Run boots a VM, runs o.Command in it and returns the command's exit code.
// err is non-nil when the VM could not run the command to its end (no
// assets, boot failure, timeout, cancelled context); the exit code is -1
// then. Whatever happens, QEMU is gone and the run's temporary directory
// removed when Run returns.
func Run(ctx context.Context, o Options) (exitCode int, err error) {
	if len(o.Command) == 0 {
		return -1, errors.New("vm: no command")
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}

	// Mistakes in the options are reported before anything is built or
	// booted.
	g, err := guestFromOptions(o)
	if err != nil {
		return -1, fmt.Errorf("vm: %w", err)
	}
	var assets Assets
	if o.Assets != nil {
		assets = *o.Assets
	} else if assets, err = EnsureAssets(ctx, log); err != nil {
		return -1, fmt.Errorf("vm: %w", err)
	}
	g.KernelRelease, g.ModulesDir = assets.KernelRelease, assets.Modules
	qemu := o.QEMU
	if qemu == "" {
		if qemu, err = exec.LookPath("qemu-system-x86_64"); err != nil {
			return -1, fmt.Errorf("vm: %v (Debian package qemu-system-x86; %s installs it)", err, AssetsScript)
		}
	}
	var connector string
	if len(o.Forwards) > 0 {
		if connector, err = exec.LookPath("busybox"); err != nil {
			return -1, fmt.Errorf("vm: forwards connect with busybox nc on the host: %v (Debian package busybox-static; %s installs it)", err, AssetsScript)
		}
		// It goes unquoted into QEMU's options and a command line.
		if !plainPath.MatchString(connector) {
			return -1, fmt.Errorf("vm: busybox at %q: want a path of letters, digits and /._+-", connector)
		}
	}

	runDir, err := newRunDir()
	if err != nil {
		return -1, fmt.Errorf("vm: %w", err)
	}
	defer os.RemoveAll(runDir)
	if err := os.WriteFile(filepath.Join(runDir, ctlInit), []byte(guestInitScript(g)), 0o644); err != nil {
		return -1, fmt.Errorf("vm: %w", err)
	}
	if err := os.WriteFile(filepath.Join(runDir, ctlCommand), []byte(commandScript(g)), 0o644); err != nil {
		return -1, fmt.Errorf("vm: %w", err)
	}

	q := qemuConfig{
		Assets:    assets,
		RunDir:    runDir,
		Shares:    g.Shares,
		Forwards:  o.Forwards,
		Connector: connector,
		MemoryMiB: orDefault(o.MemoryMiB, DefaultMemoryMiB),
		CPUs:      orDefault(o.CPUs, 1),
		Accel:     o.Accel,
		ConsoleFD: 3, StdoutFD: 4, StderrFD: 5,
	}
	console := newTailBuffer(16 << 10)
	qerr := newTailBuffer(4 << 10)
	consoleW := io.Writer(console)
	if o.Console != nil {
		consoleW = io.MultiWriter(console, o.Console)
	}
	killed, waitErr := runQEMU(ctx, qemu, qemuArgs(q), []io.Writer{consoleW, orDiscard(o.Stdout), orDiscard(o.Stderr)}, qerr)

	if killed {
		err := ctx.Err()
		why := "cancelled"
		if errors.Is(err, context.DeadlineExceeded) {
			why = "timed out"
			if o.Timeout > 0 {
				why += fmt.Sprintf(" (timeout %v, boot included)", o.Timeout)
			}
		}
		return -1, fmt.Errorf("vm: %s, the VM was killed: %w%s", why, err, consoleTail(console))
	}
	if msg, err := os.ReadFile(filepath.Join(runDir, ctlError)); err == nil {
		return -1, fmt.Errorf("vm: guest setup failed: %s%s", strings.TrimSpace(string(msg)), consoleTail(console))
	}
	status, err := os.ReadFile(filepath.Join(runDir, ctlExit))
	if err != nil {
		return -1, fmt.Errorf("vm: the guest stopped without the command's exit status (qemu: %v)%s%s",
			waitErr, quoted("qemu output", qerr.String()), consoleTail(console))
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(status)))
	if err != nil {
		return -1, fmt.Errorf("vm: bad exit status %q from the guest", status)
	}
	return code, nil
}

var plainPath = regexp.MustCompile(`^/[A-Za-z0-9/._+-]+$`)

// guestFromOptions checks o and resolves what the guest scripts need from
// it; the kernel's part is filled in from the assets.
func guestFromOptions(o Options) (guestConfig, error) {
	env := o.Env
	if env == nil {
		env = os.Environ()
	}
	env = validEnv(env)
	dir := o.Dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return guestConfig{}, err
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return guestConfig{}, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return guestConfig{}, fmt.Errorf("working directory %s is not a directory on the host", dir)
	}
	argv0, err := lookPath(o.Command[0], env, dir)
	if err != nil {
		return guestConfig{}, err
	}
	shares, err := cleanShares(o.WritableDirs)
	if err != nil {
		return guestConfig{}, err
	}
	for _, s := range shares {
		if st, err := os.Stat(s); err != nil || !st.IsDir() {
			return guestConfig{}, fmt.Errorf("writable dir %s is not a directory on the host", s)
		}
	}
	mods := o.Modules
	if mods == nil {
		mods = DefaultModules()
	}
	mods = slices.Clone(mods)
	if len(o.Forwards) > 0 && !slices.Contains(mods, "virtio_net") {
		mods = append(mods, "virtio_net")
	}
	if err := validateModules(mods); err != nil {
		return guestConfig{}, err
	}
	for _, f := range o.Forwards {
		if err := f.validate(); err != nil {
			return guestConfig{}, err
		}
	}
	return guestConfig{
		Modules:  mods,
		Dir:      dir,
		Argv:     append([]string{argv0}, o.Command[1:]...),
		Env:      append(env, GuestEnv+"=1"),
		Shares:   shares,
		Network:  len(o.Forwards) > 0,
		Watchdog: watchdogFor(o.Timeout),
	}, nil
}

// runQEMU runs QEMU until it exits or ctx is done (then it is killed),
// copying the pipes behind the fds 3, 4, 5 it inherits to outs, and returns
// whether it killed QEMU and Wait's error, once every byte has been copied.
func runQEMU(ctx context.Context, qemu string, args []string, outs []io.Writer, qerr io.Writer) (killed bool, waitErr error) {
	cmd := exec.Command(qemu, args...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = qerr, qerr
	// Its own process group, so a kill reaches everything it started, and
	// SIGKILL when the runner dies, so no QEMU outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			_ = f.Close()
		}
	}
	readers := make([]*os.File, len(outs))
	for i := range outs {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(readers[:i])
			closeAll(cmd.ExtraFiles)
			return false, err
		}
		readers[i] = r
		cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	}

	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started the child exits, not
		// the process: keep this goroutine on its thread until QEMU is gone.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	err := <-started
	// The child has its copies of the write ends; ours must go, or the
	// readers never see EOF.
	closeAll(cmd.ExtraFiles)
	if err != nil {
		closeAll(readers)
		return false, err
	}

	// One lock over all the writers: a caller may well pass the same
	// buffer as stdout and stderr.
	var writeMu sync.Mutex
	var copiers sync.WaitGroup
	for i, r := range readers {
		copiers.Go(func() {
			drain(lockedWriter{&writeMu, outs[i]}, r)
			_ = r.Close()
		})
	}
	select {
	case waitErr = <-exited:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		killed, waitErr = true, <-exited
	}
	copiers.Wait()
	return killed, waitErr
}

// drain copies r to w; when w fails it keeps reading, so QEMU (and the guest
// writing to the serial port) never blocks on a full pipe.
func drain(w io.Writer, r io.Reader) {
	if _, err := io.Copy(w, r); err != nil {
		_, _ = io.Copy(io.Discard, r)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func consoleTail(t *tailBuffer) string { return quoted("guest console (last lines)", t.String()) }

func quoted(what, text string) string {
	text = strings.TrimSpace(text)
	if text == "" {
		return ""
	}
	lines := strings.Split(text, "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "\n" + what + ":\n\t" + strings.Join(lines, "\n\t")
}
