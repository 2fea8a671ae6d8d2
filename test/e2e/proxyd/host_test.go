//go:build e2e && !e2eguest

package proxyd

import (
	"testing"

	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/e2e/harness"
)

// TestProxydInVM runs the guest half (guest_test.go) in a VM against a
// control plane on the host; see the package comment.
func TestProxydInVM(t *testing.T) {
	harness.RunGuest(t, harness.Config{
		GuestPackage: "./test/e2e/proxyd",
		Daemons:      []string{"proxyd"},
		Identities:   []controlplane.Identity{controlplane.Proxyd},
	})
}
