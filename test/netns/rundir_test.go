package netns

import (
	"os"
	"path/filepath"
	"testing"
)

// These run without root, in the unit layer.

func TestParseStatStart(t *testing.T) {
	for _, tc := range []struct {
		stat string
		want uint64
		ok   bool
	}{
		// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime ...
		{"42 (netns.test) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 8 0 123456 1000 10", 123456, true},
		{"42 (a) b) (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 8 0 987 1000 10", 987, true},
		{"42 (short) S 1 2", 0, false},
		{"garbage", 0, false},
	} {
		got, err := parseStatStart(tc.stat)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseStatStart(%q) = %d, %v; want %d, ok=%v", tc.stat, got, err, tc.want, tc.ok)
		}
	}
}

func TestOwnerAlive(t *testing.T) {
	self, err := selfOwner("test")
	if err != nil {
		t.Fatal(err)
	}
	if !self.alive() {
		t.Fatalf("own owner record %+v not alive", self)
	}
	reused := self
	reused.Start++
	if reused.alive() {
		t.Fatal("an owner with another start time (a reused PID) counts as alive")
	}
	if (owner{PID: -1}).alive() || (owner{}).alive() {
		t.Fatal("an invalid PID counts as alive")
	}
}

func TestRunDirOwnerRecord(t *testing.T) {
	state := t.TempDir()
	self, err := selfOwner("TestRunDirOwnerRecord")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := createRunDir(state, "abc123", self)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(state, "nnt-abc123") {
		t.Fatalf("run dir %s", dir)
	}
	got, err := readOwner(dir)
	if err != nil || got.PID != self.PID || got.Start != self.Start || got.Label != self.Label {
		t.Fatalf("owner %+v, %v; want %+v", got, err, self)
	}
	if _, err := os.Stat(filepath.Join(state, ".nnt-abc123")); !os.IsNotExist(err) {
		t.Fatalf("temporary dir left: %v", err)
	}
	if _, err := createRunDir(state, "abc123", self); err == nil {
		t.Fatal("second run dir with the same id accepted")
	}
}

func TestAbandonedHiddenRunDir(t *testing.T) {
	state := t.TempDir()
	young := filepath.Join(state, ".nnt-young1")
	if err := os.Mkdir(young, 0o755); err != nil {
		t.Fatal(err)
	}
	if abandoned(young, true) {
		t.Fatal("a run dir being created (hidden, no owner yet, young) counts as abandoned")
	}
	if !abandoned(young, false) {
		t.Fatal("a published run dir without owner record does not count as abandoned")
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/run/nodenet-test/nnt-1/netns/node0`: `/run/nodenet-test/nnt-1/netns/node0`,
		`/tmp/a\040b/c`:                       `/tmp/a b/c`,
		`/tmp/back\134slash`:                  `/tmp/back\slash`,
		`/tmp/trailing\04`:                    `/tmp/trailing\04`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}
