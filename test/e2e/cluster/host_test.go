//go:build e2e && !e2eguest

package cluster

import (
	"strings"
	"testing"

	"github.com/nodenet/nodenet/test/binaries"
	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/vm"
)

// TestClusterInVM runs the guest half (guest_test.go) in a VM against a
// control plane on the host; see the package comment. The VM's default
// memory (1 GiB) holds the nine daemons: about 640 MB are still available
// at the end of the run.
//
// Scenario 5 upgrades daemons to a build of another version: built here,
// before the VM boots (the guest cannot build), its paths passed in the
// guest's environment.
func TestClusterInVM(t *testing.T) {
	upgrades := []string{"routerd", "proxyd"}
	bins, err := binaries.BuildVersion(t.TempDir(), upgradeVersion, upgrades...)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, d := range upgrades {
		env = append(env, envUpgradeBinPrefix+strings.ToUpper(d)+"="+bins[d])
	}
	harness.RunGuest(t, harness.Config{
		Env:          env,
		GuestPackage: "./test/e2e/cluster",
		Daemons:      binaries.Daemons(),
		Identities:   controlplane.Daemons(),
		// firewalld sets bridge-nf-call-iptables, which exists once the
		// node has br_netfilter: same-node pod traffic is policed then.
		Modules: append(vm.DefaultModules(), "br_netfilter"),
	})
}
