// Package binaries builds the daemons once per test binary, the way the
// Makefile does (version stamped with -ldflags), so end-to-end tests run the
// real programs. NODENET_BIN_DIR points at prebuilt ones instead.
package binaries

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// TestVersion is the version stamped into binaries built here.
const TestVersion = "v0.0.0-e2e"

// Set builds (once) and returns the paths of routerd, proxyd and firewalld.
type Set struct {
	once  sync.Once
	err   error
	paths map[string]string
}

// Daemons are the binaries a Set builds.
func Daemons() []string { return []string{"routerd", "proxyd", "firewalld"} }

// Paths returns name → path of the daemons, building them on first use into
// dir (a directory that outlives one test, e.g. from os.MkdirTemp in TestMain).
func (s *Set) Paths(dir string) (map[string]string, error) {
	s.once.Do(func() { s.paths, s.err = Build(dir, Daemons()...) })
	return s.paths, s.err
}

// Build builds the daemons named (some of Daemons()) into dir, as Set does,
// and returns name → path: for a test that runs one daemon and should not
// depend on the others compiling.
func Build(dir string, daemons ...string) (map[string]string, error) {
	return BuildVersion(dir, TestVersion, daemons...)
}

// BuildVersion is Build with another version stamped in: a test upgrading
// a daemon runs a second build under a version of its own.
func BuildVersion(dir, version string, daemons ...string) (map[string]string, error) {
	paths := map[string]string{}
	if pre := os.Getenv("NODENET_BIN_DIR"); pre != "" {
		for _, d := range daemons {
			p := filepath.Join(pre, d)
			if _, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("NODENET_BIN_DIR: %w", err)
			}
			paths[d] = p
		}
		return paths, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	args := []string{"build", "-o", dir + "/", "-ldflags", "-X github.com/nodenet/nodenet/internal/version.Version=" + version + " -X github.com/nodenet/nodenet/internal/version.Commit=e2e"}
	for _, d := range daemons {
		args = append(args, "./"+d+"/cmd/"+d)
		paths[d] = filepath.Join(dir, d)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	return paths, nil
}

// Skeletons builds test/cmd/skeletond once into dir and links it there
// under the three daemon names: the shared skeleton as real processes,
// without any datapath.
func Skeletons(dir string) (map[string]string, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "skeletond")
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags",
		"-X github.com/nodenet/nodenet/internal/version.Version="+TestVersion+" -X github.com/nodenet/nodenet/internal/version.Commit=e2e",
		"./test/cmd/skeletond")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	paths := map[string]string{}
	for _, d := range Daemons() {
		p := filepath.Join(dir, d)
		if err := os.Link(bin, p); err != nil && !os.IsExist(err) {
			return nil, err
		}
		paths[d] = p
	}
	return paths, nil
}

// RepoRoot is the directory of go.work above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory")
		}
		dir = parent
	}
}
