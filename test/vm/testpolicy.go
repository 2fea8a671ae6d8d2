package vm

import (
	"context"
	"io"
	"os"
)

// AssetsForTests is the policy of tests that boot VMs from the host:
//   - inside the VM (GuestEnv set) they skip: the boots are the host's to test;
//   - with CI=true they must run: the assets are built when missing, and an
//     error is a failure;
//   - otherwise they run as root when the assets are built, and skip
//     (saying why) when not.
//
// skip is the reason to skip, or "".
func AssetsForTests(ctx context.Context, log io.Writer) (a Assets, skip string, err error) {
	if os.Getenv(GuestEnv) == "1" {
		return Assets{}, "inside the VM already: VM boots are tested from the host", nil
	}
	if os.Getenv("CI") == "true" {
		a, err := EnsureAssets(ctx, log)
		return a, "", err
	}
	if os.Geteuid() != 0 {
		return Assets{}, "boots a VM: needs root (run as root, or with CI=true)", nil
	}
	a, err = FindAssets()
	if err != nil {
		return Assets{}, err.Error() + ": build them with " + AssetsScript + " (CI=true does it)", nil
	}
	return a, "", nil
}
