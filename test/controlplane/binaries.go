package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nodenet/nodenet/test/binaries"
)

// BinDirEnv names prebuilt binaries (kube-apiserver, kube-controller-manager,
// etcd) to use instead of the cache hack/build-controlplane.sh fills.
const BinDirEnv = "NODENET_CONTROLPLANE_BIN_DIR"

// ErrBinariesMissing is returned by Start when the binaries are not built and
// building them was not allowed. StartForTest turns it into a skip.
var ErrBinariesMissing = errors.New("control plane binaries not built")

var binaryNames = []string{"etcd", "kube-apiserver", "kube-controller-manager"}

// binaryPaths finds the three binaries: in $NODENET_CONTROLPLANE_BIN_DIR, or
// in the cache directory hack/build-controlplane.sh names, building them
// there first when build is true (a cold build takes about 8 minutes on 2
// cores; the script prints its progress to buildLog).
func binaryPaths(ctx context.Context, build bool, buildLog io.Writer) (map[string]string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		paths, missing := pathsIn(dir)
		if missing != "" {
			return nil, fmt.Errorf("%s=%s: %s is missing", BinDirEnv, dir, missing)
		}
		return paths, nil
	}
	root, err := binaries.RepoRoot()
	if err != nil {
		return nil, err
	}
	script := filepath.Join(root, "hack", "build-controlplane.sh")
	out, err := exec.CommandContext(ctx, script, "--print-dir").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --print-dir: %w", script, err)
	}
	paths, missing := pathsIn(strings.TrimSpace(string(out)))
	if missing == "" {
		return paths, nil
	}
	if !build {
		return nil, fmt.Errorf("%w (%s is missing): run %s once (about 8 min cold, cached after), or set CI=true to build them from the test",
			ErrBinariesMissing, missing, script)
	}
	cmd := exec.CommandContext(ctx, script)
	cmd.Stderr = buildLog
	// Cancelling stops the whole build (go build and its compilers), not
	// only the script. A test binary that dies instead (go test -timeout)
	// leaves the build to finish and fill the cache for the next run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	out, err = cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", script, err)
	}
	paths, missing = pathsIn(strings.TrimSpace(string(out)))
	if missing != "" {
		return nil, fmt.Errorf("%s succeeded but %s is missing", script, missing)
	}
	return paths, nil
}

// pathsIn returns the binaries' paths in dir, or the first one missing.
func pathsIn(dir string) (paths map[string]string, missing string) {
	paths = map[string]string{}
	for _, name := range binaryNames {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, p
		}
		paths[name] = p
	}
	return paths, ""
}
