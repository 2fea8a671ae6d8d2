package vm

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLookPath(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"tool": 0o755, "data": 0o644} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=/nonexistent:" + bin}
	for _, c := range []struct {
		name, dir, want string
	}{
		{"tool", "/", filepath.Join(bin, "tool")},
		{filepath.Join(bin, "tool"), "/", filepath.Join(bin, "tool")},
		{"bin/tool", root, filepath.Join(bin, "tool")},
		{"./tool", bin, filepath.Join(bin, "tool")},
	} {
		got, err := lookPath(c.name, env, c.dir)
		if err != nil || got != c.want {
			t.Errorf("lookPath(%q, dir %q) = %q, %v; want %q", c.name, c.dir, got, err, c.want)
		}
	}
	// An empty PATH element is the working directory.
	if got, err := lookPath("tool", []string{"PATH=/nonexistent:"}, bin); err != nil || got != filepath.Join(bin, "tool") {
		t.Errorf("empty PATH element: %q, %v", got, err)
	}
	for _, name := range []string{"data", "missing", "", filepath.Join(bin, "data"), bin} {
		if got, err := lookPath(name, env, "/"); err == nil {
			t.Errorf("lookPath(%q) = %q, want an error", name, got)
		}
	}
}
