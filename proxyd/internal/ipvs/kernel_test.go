package ipvs

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNewKernelWithoutIPVS: where the kernel has no IPVS (this project's
// hosts), the constructor says so instead of failing at the first sync.
// Where it has IPVS (the VM) the vm-tagged tests cover the real thing. On a
// host that can load ip_vs, opening it loads the module, as proxyd would.
func TestNewKernelWithoutIPVS(t *testing.T) {
	k, err := NewKernel()
	switch {
	case err == nil:
		_ = k.Close()
		t.Skip("this kernel has IPVS; the vm-tagged tests cover the kernel implementation")
	case errors.Is(err, unix.EPERM):
		t.Skipf("this kernel has IPVS but we may not use it (%v); the vm-tagged tests cover it", err)
	case !errors.Is(err, ErrNoIPVS):
		t.Fatalf("NewKernel: %v, want an error wrapping ErrNoIPVS", err)
	}
	if !strings.Contains(err.Error(), "no IPVS") {
		t.Fatalf("NewKernel error %q does not say the kernel has no IPVS", err)
	}
	t.Logf("NewKernel: %v", err)
}
