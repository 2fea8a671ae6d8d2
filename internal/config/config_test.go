package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func parse(t *testing.T, args []string, env map[string]string) (Common, error) {
	t.Helper()
	c := DefaultCommon("proxyd", 10281, "node-a")
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	err := ApplyEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	return c, err
}

func TestDefaults(t *testing.T) {
	c, err := parse(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if c.NodeName != "node-a" || c.RunDir != "/run/nodenet" || c.MetricsAddr != "127.0.0.1:10281" {
		t.Fatalf("defaults %+v", c)
	}
	if strings.Join(c.Peers, ",") != "routerd,firewalld" {
		t.Fatalf("default peers %v, want the other two daemons", c.Peers)
	}
	if SocketPath(c.RunDir, "proxyd") != "/run/nodenet/proxyd.sock" {
		t.Fatal(SocketPath(c.RunDir, "proxyd"))
	}
}

func TestFlagsBeatEnvBeatDefaults(t *testing.T) {
	c, err := parse(t, []string{"--log-level=debug"}, map[string]string{
		"NODENET_LOG_LEVEL":         "error", // the flag wins
		"NODENET_NODE_NAME":         "node-b",
		"NODENET_SYNC_MAX_INTERVAL": "90s",
		"NODENET_PEERS":             "routerd",
		"NODE_NAME":                 "ignored-without-prefix",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.LogLevel != "debug" || c.NodeName != "node-b" || c.SyncMaxInterval != 90*time.Second || strings.Join(c.Peers, ",") != "routerd" {
		t.Fatalf("config %+v", c)
	}
}

func TestBadEnvIsReported(t *testing.T) {
	_, err := parse(t, nil, map[string]string{"NODENET_HEALTH_TIMEOUT": "soon"})
	if err == nil || !strings.Contains(err.Error(), "NODENET_HEALTH_TIMEOUT") {
		t.Fatalf("err = %v, want it to name the variable", err)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := DefaultCommon("proxyd", 1, "")
	c.RunDir = "relative"
	c.LogLevel = "loud"
	c.LogFormat = "xml"
	c.MetricsAddr = "localhost"
	c.HealthTimeout = 0
	c.SyncMinInterval = time.Minute
	c.SyncMaxInterval = time.Second
	c.Peers = []string{"proxyd", "dnsd"}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"--node-name", "--run-dir", "--log-level", "--log-format", "--metrics-addr", "--health-timeout", "--sync-max-interval", "cannot watch itself", `unknown daemon "dnsd"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestAnnotateUsage(t *testing.T) {
	c := DefaultCommon("routerd", 1, "n")
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	c.Flags(fs)
	AnnotateUsage(fs)
	AnnotateUsage(fs) // idempotent
	u := fs.Lookup("node-name").Usage
	if strings.Count(u, "$NODENET_NODE_NAME") != 1 {
		t.Fatalf("usage %q", u)
	}
}
