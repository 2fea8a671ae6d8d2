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
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
)

// pollInterval is how often waits look at the kernel's state again.
const pollInterval = 20 * time.Millisecond

// kernelIn opens IPVS in ns, skipping the test where that cannot work: not
// root, or a kernel without IPVS (the host; the VM has it).
func kernelIn(tb testing.TB, ns netns.NsHandle) *Kernel {
	tb.Helper()
	var k *Kernel
	err := netnstest.InNetns(ns, func() (err error) {
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
	netnstest.RequireRoot(tb, "creates network namespaces and uses IPVS; run in the VM: go test -tags vm -exec $PWD/_output/bin/vmexec ./proxyd/internal/ipvs/")
	ns := netnstest.New(tb)
	return kernelIn(tb, ns), ns
}
