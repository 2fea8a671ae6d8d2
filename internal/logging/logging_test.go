package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestJSONAndLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := New("warn", "json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("lines %q", lines)
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatal(err)
	}
	if entry["msg"] != "shown" || entry["level"] != "warn" || entry["ts"] == nil {
		t.Fatalf("entry %v", entry)
	}
}

func TestConsoleAndErrors(t *testing.T) {
	var buf bytes.Buffer
	log, err := New("debug", "console", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hello")
	if !strings.Contains(buf.String(), "DEBUG") || !strings.Contains(buf.String(), "hello") {
		t.Fatalf("console output %q", buf.String())
	}
	if _, err := New("chatty", "json", &buf); err == nil {
		t.Fatal("bad level accepted")
	}
	if _, err := New("info", "yaml", &buf); err == nil {
		t.Fatal("bad format accepted")
	}
}
