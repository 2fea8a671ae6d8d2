package podnet

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWriteConfList(t *testing.T) {
	// A umask must not change the file's mode.
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultConfFile)
	data := []byte(`{"v":1}` + "\n")

	changed, err := WriteConfList(dir, "", data)
	if err != nil || !changed {
		t.Fatalf("first write: %v, %v", changed, err)
	}
	checkFile(t, path, data)
	st1, _ := os.Stat(path)

	// The same content again: nothing written, the file untouched.
	changed, err = WriteConfList(dir, "", data)
	if err != nil || changed {
		t.Fatalf("same content: changed %v, %v", changed, err)
	}
	st2, _ := os.Stat(path)
	if !os.SameFile(st1, st2) || !st1.ModTime().Equal(st2.ModTime()) {
		t.Error("same content: the file was replaced")
	}

	// New content replaces the file (a new inode: renamed over it, never
	// rewritten in place where a reader could see half of it).
	data2 := []byte(`{"v":2}` + "\n")
	changed, err = WriteConfList(dir, "", data2)
	if err != nil || !changed {
		t.Fatalf("new content: %v, %v", changed, err)
	}
	checkFile(t, path, data2)
	if st3, _ := os.Stat(path); os.SameFile(st1, st3) {
		t.Error("new content written in place, not renamed over the old file")
	}

	// A file with the right content but the wrong mode is rewritten.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if changed, err := WriteConfList(dir, "", data2); err != nil || !changed {
		t.Fatalf("wrong mode: changed %v, %v", changed, err)
	}
	checkFile(t, path, data2)

	// A longer file that starts with data differs.
	if err := os.WriteFile(path, append(data2, data2...), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := WriteConfList(dir, "", data2); err != nil || !changed {
		t.Fatalf("longer file: changed %v, %v", changed, err)
	}
	checkFile(t, path, data2)

	// No temporary file is left behind, and none would have been loaded
	// by a runtime.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want the config only: %v", len(entries), entries)
	}

	if err := RemoveConfList(dir, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("after RemoveConfList: %v", err)
	}
	if err := RemoveConfList(dir, ""); err != nil {
		t.Errorf("removing a missing file: %v", err)
	}
}

func TestWriteConfListTempName(t *testing.T) {
	// The temporary file must not look like a config to a runtime that
	// lists the directory while routerd writes.
	dir := t.TempDir()
	// A missing directory is an error, not a panic.
	if _, err := WriteConfList(filepath.Join(dir, "missing"), "", []byte("x")); err == nil {
		t.Fatal("write into a missing directory: no error")
	}
	name := "." + DefaultConfFile + ".tmp-123"
	if isConfFile(name) {
		t.Errorf("temporary name %s would be loaded as a config", name)
	}
}

func TestConfFileNames(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{".", "..", "a/b", "../x.conflist", "x\x00"} {
		if _, err := WriteConfList(dir, bad, []byte("x")); err == nil {
			t.Errorf("WriteConfList(%q): no error", bad)
		}
		if err := RemoveConfList(dir, bad); err == nil {
			t.Errorf("RemoveConfList(%q): no error", bad)
		}
	}
	if changed, err := WriteConfList(dir, "20-other.conflist", []byte("x")); err != nil || !changed {
		t.Fatal(changed, err)
	}
	checkFile(t, filepath.Join(dir, "20-other.conflist"), []byte("x"))
}

func checkFile(t *testing.T, path string, want []byte) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("%s: mode %v, want 0644", path, st.Mode().Perm())
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	if strings.HasPrefix(filepath.Base(path), ".") {
		t.Errorf("%s is a temporary file", path)
	}
}
