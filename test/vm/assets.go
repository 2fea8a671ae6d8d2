package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// assetFormat is what hack/vm-assets.sh writes into "complete"; it changes
// with the layout of the asset directory and with the stage-1 init's
// contract (the control share's tag and /ctl/init.sh).
const assetFormat = "format 1"

// AssetsScript is the script that builds the assets, relative to the
// repository root.
const AssetsScript = "hack/vm-assets.sh"

// ErrNoAssets means no complete asset directory was found.
var ErrNoAssets = errors.New("no VM assets")

// Assets is one built asset directory (see hack/vm-assets.sh).
type Assets struct {
	Dir string
	// Kernel is vmlinux (booted through PVH) or, when that could not be
	// unpacked, vmlinuz.
	Kernel        string
	Initramfs     string
	KernelRelease string
	// Modules is lib/modules/<release> inside Dir.
	Modules string
}

// CacheDir is where hack/vm-assets.sh builds the assets:
// ${NODENET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nodenet}/vm.
func CacheDir() (string, error) {
	if c := os.Getenv("NODENET_CACHE"); c != "" {
		return filepath.Join(c, "vm"), nil
	}
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "nodenet", "vm"), nil
}

// LoadAssets checks that dir is a complete asset directory of the format
// this package expects.
func LoadAssets(dir string) (Assets, error) {
	stamp, err := os.ReadFile(filepath.Join(dir, "complete"))
	if err != nil {
		return Assets{}, fmt.Errorf("%w in %s: %v", ErrNoAssets, dir, err)
	}
	if got := strings.TrimSpace(string(stamp)); got != assetFormat {
		return Assets{}, fmt.Errorf("%w in %s: %q, want %q (rebuild with %s)", ErrNoAssets, dir, got, assetFormat, AssetsScript)
	}
	rel, err := os.ReadFile(filepath.Join(dir, "kernel-release"))
	if err != nil {
		return Assets{}, fmt.Errorf("assets %s: %v", dir, err)
	}
	a := Assets{
		Dir:           dir,
		Kernel:        filepath.Join(dir, "vmlinux"),
		Initramfs:     filepath.Join(dir, "initramfs.cpio.gz"),
		KernelRelease: strings.TrimSpace(string(rel)),
	}
	a.Modules = filepath.Join(dir, "lib", "modules", a.KernelRelease)
	if _, err := os.Stat(a.Kernel); err != nil {
		a.Kernel = filepath.Join(dir, "vmlinuz")
	}
	for _, f := range []string{a.Kernel, a.Initramfs, filepath.Join(a.Modules, "modules.dep")} {
		if _, err := os.Stat(f); err != nil {
			return Assets{}, fmt.Errorf("assets %s: %v", dir, err)
		}
	}
	return a, nil
}

// FindAssets returns the directory named by NODENET_VM_ASSETS, or else the
// most recently built complete one in CacheDir. It builds nothing.
func FindAssets() (Assets, error) {
	if d := os.Getenv("NODENET_VM_ASSETS"); d != "" {
		return LoadAssets(d)
	}
	cache, err := CacheDir()
	if err != nil {
		return Assets{}, err
	}
	entries, err := os.ReadDir(cache)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Assets{}, err
	}
	var best Assets
	var bestTime time.Time
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(cache, e.Name())
		a, err := LoadAssets(dir)
		if err != nil {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, "complete"))
		if err != nil {
			continue
		}
		if best.Dir == "" || st.ModTime().After(bestTime) {
			best, bestTime = a, st.ModTime()
		}
	}
	if best.Dir == "" {
		return Assets{}, fmt.Errorf("%w in %s", ErrNoAssets, cache)
	}
	return best, nil
}

// EnsureAssets returns FindAssets' answer, building the assets with
// hack/vm-assets.sh (found above the working directory or the executable)
// when there are none. The script's progress goes to log.
func EnsureAssets(ctx context.Context, log io.Writer) (Assets, error) {
	a, err := FindAssets()
	if err == nil || !errors.Is(err, ErrNoAssets) || os.Getenv("NODENET_VM_ASSETS") != "" {
		return a, err
	}
	script, serr := findScript()
	if serr != nil {
		return Assets{}, fmt.Errorf("%v, and %v: run %s from the repository (as root)", err, serr, AssetsScript)
	}
	if log == nil {
		log = io.Discard
	}
	fmt.Fprintf(log, "vm: %v; building them with %s\n", err, script)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Stdout, cmd.Stderr = &out, log
	if err := cmd.Run(); err != nil {
		return Assets{}, fmt.Errorf("%s: %v", script, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return LoadAssets(lines[len(lines)-1])
}

// findScript looks for hack/vm-assets.sh in the directories above the
// working directory (go test runs a test binary in its package's source
// directory) and above the executable (vmexec built into _output/bin).
func findScript() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			p := filepath.Join(dir, AssetsScript)
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("%s not found above %s", AssetsScript, strings.Join(starts, " or "))
}
