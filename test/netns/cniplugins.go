package netns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/nodenet/nodenet/test/binaries"
)

// The CNI plugins pods are attached with: the reference plugins, built from
// the Go module proxy by hack/build-cni-plugins.sh into a cache outside the
// repository (keep the version in step with that script).
const cniPluginsVersion = "v1.9.1"

// cniPlugins are the plugin binaries a topology executes.
func cniPlugins() []string { return []string{"bridge", "host-local", "loopback"} }

// resolveCNIBinDir returns the directory holding the plugins: dir (from
// Options) or $NODENET_CNI_BIN_DIR when set, which must already hold them
// (prebuilt plugins, e.g. inside a VM); otherwise the cache directory, after
// building them there with hack/build-cni-plugins.sh when one is missing.
func resolveCNIBinDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("NODENET_CNI_BIN_DIR")
	}
	if dir != "" {
		if err := havePlugins(dir); err != nil {
			return "", fmt.Errorf("CNI plugins: %w", err)
		}
		return dir, nil
	}
	cache, err := cacheRoot()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(cache, "cni", cniPluginsVersion)
	if havePlugins(dir) == nil {
		return dir, nil
	}
	root, err := binaries.RepoRoot()
	if err != nil {
		return "", fmt.Errorf("CNI plugins missing in %s and the build script is not found: %w", dir, err)
	}
	cmd := exec.Command(filepath.Join(root, "hack", "build-cni-plugins.sh"))
	// Pass the cache root explicitly so the script and this code agree on
	// the directory whatever XDG_CACHE_HOME says.
	cmd.Env = append(os.Environ(), "NODENET_CACHE="+cache)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/build-cni-plugins.sh: %w\n%s", err, out.Bytes())
	}
	if err := havePlugins(dir); err != nil {
		return "", fmt.Errorf("after hack/build-cni-plugins.sh: %w", err)
	}
	return dir, nil
}

// cacheRoot is ${NODENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodenet}, the
// rule hack/build-cni-plugins.sh follows.
func cacheRoot() (string, error) {
	if c := os.Getenv("NODENET_CACHE"); c != "" {
		return c, nil
	}
	user, err := os.UserCacheDir() // $XDG_CACHE_HOME, else $HOME/.cache
	if err != nil {
		return "", fmt.Errorf("CNI plugin cache: %w (set NODENET_CACHE)", err)
	}
	return filepath.Join(user, "nodenet"), nil
}

func havePlugins(dir string) error {
	var errs []error
	for _, p := range cniPlugins() {
		st, err := os.Stat(filepath.Join(dir, p))
		switch {
		case err != nil:
			errs = append(errs, err)
		case st.Mode()&0o111 == 0:
			errs = append(errs, fmt.Errorf("%s: not executable", filepath.Join(dir, p)))
		}
	}
	return errors.Join(errs...)
}
