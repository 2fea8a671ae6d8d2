//go:build e2e || e2eguest

package cluster

// What the host half gives the guest for the upgrade of scenario 5: the
// daemons built again with another version stamped in, each at the path in
// envUpgradeBinPrefix + its name in upper case.
const (
	envUpgradeBinPrefix = "NODENET_E2E_UPGRADE_BIN_"
	upgradeVersion      = "v0.0.1-e2e-upgrade"
)
