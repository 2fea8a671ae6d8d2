package podnet

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultConfFile is the name of routerd's CNI config file: "10-" sorts
// it before the configs a distribution or another CNI left behind, so the
// runtime (which uses the first config in lexical order) uses it.
const DefaultConfFile = "10-nodenet.conflist"

// confMode is the config file's mode: runtimes and operators read it.
const confMode fs.FileMode = 0o644

// checkFileName says why name cannot be a config file in a directory.
func checkFileName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("CNI config file name %q is not a file name", name)
	}
	return nil
}

// WriteConfList makes dir/name ("" is DefaultConfFile) hold data, mode
// 0644, and reports whether it wrote anything: a file that already holds
// exactly data is left alone (a restarted routerd writes nothing, and a
// runtime watching the directory sees no change).
//
// The write is atomic: data goes to a temporary file in dir (its name
// starts with a dot and ends in neither .conf nor .conflist, so no runtime
// loads it), synced, renamed over the config and the directory synced, so
// a runtime or a crash sees the old file or the new one, never half of
// one.
func WriteConfList(dir, name string, data []byte) (changed bool, err error) {
	if name == "" {
		name = DefaultConfFile
	}
	if err := checkFileName(name); err != nil {
		return false, err
	}
	path := filepath.Join(dir, name)
	if same, err := holds(path, data); err != nil || same {
		return false, err
	}
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-")
	if err != nil {
		return false, fmt.Errorf("write CNI config: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600; Chmod is not subject to the umask.
	if err = tmp.Chmod(confMode); err != nil {
		return false, fmt.Errorf("write CNI config: %w", err)
	}
	if _, err = tmp.Write(data); err != nil {
		return false, fmt.Errorf("write CNI config: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return false, fmt.Errorf("write CNI config: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return false, fmt.Errorf("write CNI config: %w", err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return false, fmt.Errorf("write CNI config: %w", err)
	}
	// The rename is durable once the directory is: without this a crash
	// could bring back the old file (or none).
	if err := syncDir(dir); err != nil {
		return true, fmt.Errorf("write CNI config %s: sync directory: %w", path, err)
	}
	return true, nil
}

// holds reports whether path is a regular file of mode 0644 holding
// exactly data; a missing file does not.
func holds(path string, data []byte) (bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read CNI config: %w", err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm() != confMode || st.Size() != int64(len(data)) {
		return false, nil
	}
	have, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("read CNI config: %w", err)
	}
	return bytes.Equal(have, data), nil
}

// RemoveConfList removes dir/name ("" is DefaultConfFile): routerd
// cleanup, so that no new pod is attached to its network. A missing file
// is no error.
func RemoveConfList(dir, name string) error {
	if name == "" {
		name = DefaultConfFile
	}
	if err := checkFileName(name); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove CNI config: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("remove CNI config: sync directory: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}
