package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// runDirPrefix names run directories after the runner's pid, so a later run
// can tell the ones whose runner was killed (SIGKILL leaves no chance to
// clean up) from the ones in use.
const runDirPrefix = "nodenet-vm-"

// newRunDir makes this run's directory (the control share) in os.TempDir,
// first removing those left by runners that are gone.
func newRunDir() (string, error) {
	sweepRunDirs(os.TempDir())
	return os.MkdirTemp("", fmt.Sprintf("%s%d-", runDirPrefix, os.Getpid()))
}

// sweepRunDirs removes run directories in dir whose runner process no
// longer exists. A reused pid only keeps a stale directory a while longer.
func sweepRunDirs(dir string) {
	matches, _ := filepath.Glob(filepath.Join(dir, runDirPrefix+"*-*"))
	for _, m := range matches {
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(m), runDirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || processExists(pid) {
			continue
		}
		_ = os.RemoveAll(m)
	}
}

func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
