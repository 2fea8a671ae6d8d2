//go:build vm

package ipvs

// Helpers of the vm-tagged tests: they run against the kernel's IPVS inside
// the project's QEMU VM (the host kernel has none):
//
//	cd /work/main && make vmexec vm-assets
//	go test -tags vm -exec $PWD/_output/bin/vmexec ./proxyd/internal/ipvs/
//
// Every test builds what it needs in network namespaces of its own (IPVS
// tables are per namespace), which the kernel removes with their last
// handle and socket. Addresses: virtual services on 198.19.0.0/16 and
// fd00:19::/64, real servers on 198.18.0.0/16 and fd00:18::/64.

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

// onThread runs fn on a locked OS thread of its own, then puts the thread
// back into the namespace it started in. A thread that cannot be put back
// stays locked, so the runtime ends it with its goroutine instead of
// reusing it in the wrong namespace.
func onThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
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

// inNetns runs fn on a thread inside ns: sockets fn opens belong to ns for
// their whole life, whichever thread uses them later.
func inNetns(ns netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		return fn()
	})
}

// newNetns creates an unnamed network namespace with lo up, released with
// the test (b also satisfies testing.TB).
func newNetns(tb testing.TB) netns.NsHandle {
	tb.Helper()
	var ns netns.NsHandle
	err := onThread(func() (err error) {
		ns, err = netns.New() // unshare(CLONE_NEWNET); the thread is now in it
		return err
	})
	if err != nil {
		tb.Fatalf("new netns: %v", err)
	}
	tb.Cleanup(func() { _ = ns.Close() })
	h := handle(tb, ns)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		tb.Fatalf("lo up: %v", err)
	}
	return ns
}

// handle is a netlink handle bound to ns, closed with the test.
func handle(tb testing.TB, ns netns.NsHandle) *netlink.Handle {
	tb.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		tb.Fatalf("netlink handle: %v", err)
	}
	tb.Cleanup(h.Close)
	return h
}

// kernelIn opens IPVS in ns, skipping the test where that cannot work: not
// root, or a kernel without IPVS (the host; the VM has it).
func kernelIn(tb testing.TB, ns netns.NsHandle) *Kernel {
	tb.Helper()
	var k *Kernel
	err := inNetns(ns, func() (err error) {
		k, err = NewKernel()
		return err
	})
	switch {
	case errors.Is(err, ErrNoIPVS):
		tb.Skipf("%v; run in the VM: go test -tags vm -exec $PWD/_output/bin/vmexec ./proxyd/internal/ipvs/", err)
	case err != nil:
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = k.Close() })
	return k
}

// newKernel is the common start of a test: root or skip, a fresh namespace,
// IPVS opened in it.
func newKernel(tb testing.TB) (*Kernel, netns.NsHandle) {
	tb.Helper()
	requireRoot(tb)
	ns := newNetns(tb)
	return kernelIn(tb, ns), ns
}

func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (network namespaces, IPVS); run in the VM: go test -tags vm -exec $PWD/_output/bin/vmexec ./proxyd/internal/ipvs/")
	}
}

// waitFor polls cond until it holds or timeout passes; state describes
// what was last seen, for the failure message.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() (ok bool, state string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v; last seen: %s", what, timeout, state)
		}
		<-tick.C
	}
}
