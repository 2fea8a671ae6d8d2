package sysctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestApplyWritesOnlyWhatDiffers(t *testing.T) {
	root := t.TempDir()
	write := func(name, v string) {
		p := filepath.Join(root, strings.ReplaceAll(name, ".", "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("net.ipv4.ip_forward", "1")
	write("net.ipv4.vs.conntrack", "0")
	s := Sysctl{Root: root}
	settings := []Setting{{Name: "net.ipv4.ip_forward", Value: "1"}, {Name: "net.ipv4.vs.conntrack", Value: "1"}}
	n, err := s.Apply(settings)
	if err != nil || n != 1 {
		t.Fatalf("first apply: %d writes, %v; want 1", n, err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "net/ipv4/vs/conntrack")); string(b) != "1" {
		t.Fatalf("conntrack = %q", b)
	}
	if n, err := s.Apply(settings); err != nil || n != 0 {
		t.Fatalf("second apply: %d writes, %v; want none", n, err)
	}
	n, err = s.Apply([]Setting{{Name: "net.ipv4.vs.missing", Value: "1", Why: "because"}, {Name: "net.ipv4.ip_forward", Value: "1"}})
	if err == nil || !strings.Contains(err.Error(), "because") || n != 0 {
		t.Fatalf("missing entry: %d, %v", n, err)
	}
}
