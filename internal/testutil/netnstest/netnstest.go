// Package netnstest is for tests only: the plumbing of tests that run as
// root in network namespaces of their own (build tags kernel, vm and
// e2eguest), so that the caller's namespace (the host's, or the VM's) is
// never changed. It creates unnamed namespaces with lo up, runs code inside
// them on threads of its own, links them with veth pairs and polls for
// kernel state that settles after the call that changed it.
//
// It keeps no state of its own: whatever it creates is released with the
// test (tb.Cleanup) or, for Create, by the caller.
package netnstest

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequireRoot skips the test unless it runs as root, which creating
// network namespaces needs; why says what the test needs root for, and
// how to run it.
func RequireRoot(tb testing.TB, why string) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: " + why)
	}
}

// OnThread runs fn on a locked OS thread of its own, then puts the thread
// back into the network namespace it started in. A thread that cannot be
// put back stays locked, so the runtime ends it with its goroutine instead
// of reusing it in the wrong namespace.
func OnThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer func() { _ = orig.Close() }()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("back to the original netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// InNetns runs fn on a thread switched into ns: sockets fn opens belong to
// ns for their whole life, whichever goroutine or thread uses them later.
func InNetns(ns netns.NsHandle, fn func() error) error {
	return OnThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		return fn()
	})
}

// New creates a network namespace with lo up (see Create), released with
// the test; it skips the test unless it runs as root.
func New(tb testing.TB) netns.NsHandle {
	tb.Helper()
	RequireRoot(tb, "creates network namespaces")
	ns, err := Create()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ns.Close() })
	return ns
}

// Create creates an unnamed network namespace with lo up. The kernel
// removes it once its handle is closed and the last socket in it is gone.
func Create() (netns.NsHandle, error) {
	var ns netns.NsHandle
	if err := OnThread(func() (err error) {
		ns, err = netns.New() // unshare(CLONE_NEWNET): also moves the thread into it
		return err
	}); err != nil {
		return ns, fmt.Errorf("new netns: %w", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		_ = ns.Close()
		return ns, err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		_ = ns.Close()
		return ns, fmt.Errorf("lo up: %w", err)
	}
	return ns, nil
}

// Handle is a netlink handle bound to ns, usable from any goroutine and
// closed with the test.
func Handle(tb testing.TB, ns netns.NsHandle) *netlink.Handle {
	tb.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		tb.Fatalf("netlink handle: %v", err)
	}
	tb.Cleanup(h.Close)
	return h
}

// WaitFor polls cond every interval until it reports done, and fails the
// test when timeout passes first (or the test's context ends), with cond's
// last explanation of what it saw.
func WaitFor(tb testing.TB, timeout, interval time.Duration, what string, cond func() (done bool, state string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		done, state := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not after %v: %s", what, timeout, state)
		}
		select {
		case <-tick.C:
		case <-tb.Context().Done():
			tb.Fatalf("%s: %v", what, tb.Context().Err())
		}
	}
}
