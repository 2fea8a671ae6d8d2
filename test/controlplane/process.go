package controlplane

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// process is one control-plane binary, in its own process group so that
// stopping it also stops anything it started, with its output in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // the exit status; read only after done is closed
}

// spawner starts processes from one OS thread that it keeps locked for the
// control plane's lifetime. Pdeathsig fires when the *thread* that forked a
// child exits, not the process: a child forked from an ordinary goroutine's
// thread is killed whenever the Go runtime retires that thread (which it does
// for a goroutine that exits while locked, as network-namespace code does).
// A thread we hold locked is never retired before Stop, and still dies with
// the test binary, however it ends (panic, timeout, SIGKILL), which takes the
// children with it.
type spawner struct {
	reqs chan func()
	done chan struct{}
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func()), done: make(chan struct{})}
	started := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		close(started)
		for f := range s.reqs {
			f()
		}
		// Unlocking (rather than exiting locked) keeps the thread: the
		// children are already stopped, but the runtime need not lose it.
		runtime.UnlockOSThread()
		close(s.done)
	}()
	<-started
	return s
}

// run runs f on the spawner's thread and waits for it.
func (s *spawner) run(f func()) {
	ran := make(chan struct{})
	s.reqs <- func() { f(); close(ran) }
	<-ran
}

func (s *spawner) close() {
	close(s.reqs)
	<-s.done
}

// start starts bin with args, logging to logPath, from the spawner's thread.
func (s *spawner) start(name, bin, logPath string, args []string, env []string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// An explicit environment: etcd reads ETCD_* variables and client code
	// KUBECONFIG; whatever the developer's shell holds must not leak in.
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var startErr error
	s.run(func() { startErr = cmd.Start() })
	if startErr != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, startErr)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	select {
	case <-p.done:
		if p.waitErr == nil {
			return true, errors.New("exited with status 0")
		}
		return true, p.waitErr
	default:
		return false, nil
	}
}

// stop ends the process group: with SIGTERM first when grace > 0, then
// (grace expired, or at once) SIGKILL. It returns once the process is reaped.
func (p *process) stop(grace time.Duration) {
	pgid := p.cmd.Process.Pid // Setpgid: the group id is the leader's pid
	if exited, _ := p.exited(); !exited && grace > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	// Also when the leader is gone: anything left in its group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	_ = p.logFile.Close()
}

// tail returns up to limit bytes from the end of the process's log.
func (p *process) tail(limit int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	from := max(size-limit, 0)
	b := make([]byte, size-from)
	if _, err := f.ReadAt(b, from); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	if from > 0 {
		return fmt.Sprintf("(first %d bytes omitted)\n%s", from, b)
	}
	return string(b)
}
