package netnstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// envOwnNetns marks a test binary that MainInOwnNetns re-executed in a
// network namespace of its own.
const envOwnNetns = "NETNSTEST_OWN_NETNS"

// MainInOwnNetns is for a TestMain whose tests need the whole process in
// a network namespace of its own: code that opens sockets from goroutines
// it starts itself (an embedded BGP speaker) cannot be confined to a
// namespace per thread as InNetns does. As root, it runs the test binary
// again, with the same arguments, in a new network namespace with lo up,
// and returns that run's exit code; the child's output is the test's.
// Otherwise, or in that child, it runs the tests and returns m.Run's code.
// Tests call InOwnNetns to know which case they are in.
//
//	func TestMain(m *testing.M) { os.Exit(netnstest.MainInOwnNetns(m)) }
func MainInOwnNetns(m *testing.M) int {
	if InOwnNetns() {
		if err := loUp(); err != nil {
			fmt.Fprintln(os.Stderr, "netnstest: lo up:", err)
			return 1
		}
		return m.Run()
	}
	if os.Geteuid() != 0 {
		return m.Run() // the tests skip themselves
	}
	// The child dies with the thread that forked it (Pdeathsig); keep
	// that thread until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Env = append(os.Environ(), envOwnNetns+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode()
	}
	fmt.Fprintln(os.Stderr, "netnstest: running the tests in a network namespace of their own:", err)
	return 1
}

// InOwnNetns says the process runs in the network namespace that
// MainInOwnNetns made for it (processes it starts inherit both).
func InOwnNetns() bool { return os.Getenv(envOwnNetns) == "1" }

// RequireOwnNetns skips the test unless the process runs in a network
// namespace of its own (see MainInOwnNetns); why says what the test does
// there.
func RequireOwnNetns(tb testing.TB, why string) {
	tb.Helper()
	if !InOwnNetns() {
		tb.Skip("needs root (the test binary re-executes itself in a network namespace of its own): " + why)
	}
}

func loUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// Start starts cmd inside network namespace ns and kills it at the end of
// the test if it still runs. The returned channel gets cmd.Wait's result.
// cmd is forked from a thread that stays in ns and waits for it: a child
// inherits the namespace of the thread that forks it, and Pdeathsig (set
// here) kills it when that thread ends, so nothing outlives the test
// process.
func Start(tb testing.TB, ns netns.NsHandle, cmd *exec.Cmd) <-chan error {
	tb.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	started := make(chan error, 1)
	done := make(chan error, 1)
	go func() {
		// This thread never goes back to the pool: it is in ns, and its
		// end must mean the end of cmd. Returning while locked ends it.
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			started <- fmt.Errorf("entering the netns: %w", err)
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		tb.Fatalf("starting %s: %v", cmd.Path, err)
	}
	result := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		result <- <-done
		close(exited)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill() // an error only says it already exited
		<-exited
	})
	return result
}
