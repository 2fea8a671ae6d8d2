package netns

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// RemoveLeftovers removes the run directories under stateDir whose owner
// process is gone: it unmounts the namespaces they pin (which frees the
// namespaces and, with them, every link, route and socket inside) and
// deletes the directories, host-local and libcni state included. Run
// directories of live processes (parallel test binaries) are left alone.
// It returns the directories it removed. New calls it before building.
func RemoveLeftovers(stateDir string) ([]string, error) {
	entries, err := os.ReadDir(stateDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		dir := filepath.Join(stateDir, e.Name())
		if !e.IsDir() || !isRunDirName(e.Name()) || !abandoned(dir, strings.HasPrefix(e.Name(), ".")) {
			continue
		}
		if err := removeRunDir(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

func isRunDirName(name string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, "."), runPrefix)
}

// abandoned reports whether a run directory's owner is gone. A directory
// without a readable owner record is abandoned, except a hidden one that is
// still young: that is a run directory being created right now.
func abandoned(dir string, hidden bool) bool {
	o, err := readOwner(dir)
	if err == nil {
		return !o.alive()
	}
	if hidden {
		st, serr := os.Stat(dir)
		return serr == nil && time.Since(st.ModTime()) > time.Minute
	}
	return true
}

// removeRunDir unmounts everything mounted below dir, deepest first, then
// deletes dir.
func removeRunDir(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points strictly below dir, deepest first,
// from /proc/self/mountinfo.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	prefix := filepath.Clean(dir) + "/"
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		// Fields: id parent major:minor root mountpoint options ...
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if strings.HasPrefix(mp, prefix) {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space, ...) the
// kernel uses for whitespace and backslashes in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
