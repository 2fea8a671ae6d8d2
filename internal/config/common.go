// Package config holds the configuration every nodenet daemon shares: one
// struct with defaults, its flags, values also read from NODENET_* environment
// variables, and validation that runs before anything starts.
package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
)

// Daemons returns the names of nodenet's daemons, in the order `status` lists them.
func Daemons() []string { return []string{"routerd", "proxyd", "firewalld"} }

// DefaultRunDir is where the daemons of one node meet: the pod's shared emptyDir.
const DefaultRunDir = "/run/nodenet"

// Common is the configuration shared by all daemons.
type Common struct {
	// Daemon is the name of the daemon this configuration is for; not a flag.
	Daemon string

	NodeName    string
	RunDir      string
	Kubeconfig  string
	LogLevel    string
	LogFormat   string
	MetricsAddr string
	// Profiling serves Go's profiles (net/http/pprof) under /debug/pprof/
	// on MetricsAddr, as kube-proxy's --profiling does.
	Profiling       bool
	HealthTimeout   time.Duration
	SyncMinInterval time.Duration
	SyncMaxInterval time.Duration
	Peers           []string
}

// DefaultCommon returns the defaults for a daemon: in-cluster API access,
// metrics and health on loopback at the daemon's own port, and every other
// daemon as a peer.
func DefaultCommon(daemon string, metricsPort int, hostname string) Common {
	var peers []string
	for _, d := range Daemons() {
		if d != daemon {
			peers = append(peers, d)
		}
	}
	return Common{
		Daemon:          daemon,
		NodeName:        hostname,
		RunDir:          DefaultRunDir,
		LogLevel:        "info",
		LogFormat:       "json",
		MetricsAddr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort)),
		HealthTimeout:   2 * time.Minute,
		SyncMinInterval: time.Second,
		SyncMaxInterval: 5 * time.Minute,
		Peers:           peers,
	}
}

// Flags registers the shared flags on fs.
func (c *Common) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "name of the Kubernetes node this daemon serves (defaults to the host name)")
	c.RunDirFlag(fs)
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig for out-of-cluster use; empty means in-cluster service account")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: json or console")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "host:port for /metrics, /healthz and /livez; empty disables")
	fs.BoolVar(&c.Profiling, "profiling", c.Profiling, "serve Go's CPU, heap and goroutine profiles under /debug/pprof/ on --metrics-addr")
	fs.DurationVar(&c.HealthTimeout, "health-timeout", c.HealthTimeout, "unhealthy when a queued change waits longer than this")
	fs.DurationVar(&c.SyncMinInterval, "sync-min-interval", c.SyncMinInterval, "minimum time between two syncs (changes in between are coalesced)")
	fs.DurationVar(&c.SyncMaxInterval, "sync-max-interval", c.SyncMaxInterval, "maximum time between two syncs (periodic full resync repairs drift)")
	fs.StringSliceVar(&c.Peers, "peers", c.Peers, "daemons on this node whose facts to watch over their sockets")
}

// RunDirFlag registers only --run-dir, for subcommands that need nothing else.
func (c *Common) RunDirFlag(fs *pflag.FlagSet) {
	if fs.Lookup("run-dir") == nil {
		fs.StringVar(&c.RunDir, "run-dir", c.RunDir, "directory of the daemons' unix sockets, shared by the daemons of one node")
	}
}

// SocketPath is where daemon serves gRPC under runDir.
func SocketPath(runDir, daemon string) string {
	return filepath.Join(runDir, daemon+".sock")
}

// Validate reports every problem of c at once.
func (c *Common) Validate() error {
	var errs []error
	if c.NodeName == "" {
		errs = append(errs, errors.New("--node-name is empty and the host name is unknown"))
	}
	if !filepath.IsAbs(c.RunDir) {
		errs = append(errs, fmt.Errorf("--run-dir %q is not an absolute path", c.RunDir))
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("--log-format %q: want json or console", c.LogFormat))
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-addr: %w", err))
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("--metrics-addr: bad port %q", port))
		}
	}
	if c.HealthTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--health-timeout %v must be positive", c.HealthTimeout))
	}
	if c.SyncMinInterval < 0 {
		errs = append(errs, fmt.Errorf("--sync-min-interval %v must not be negative", c.SyncMinInterval))
	}
	if c.SyncMaxInterval <= 0 || c.SyncMaxInterval < c.SyncMinInterval {
		errs = append(errs, fmt.Errorf("--sync-max-interval %v must be positive and at least --sync-min-interval", c.SyncMaxInterval))
	}
	for _, p := range c.Peers {
		switch {
		case p == c.Daemon:
			errs = append(errs, fmt.Errorf("--peers: %s cannot watch itself", p))
		case !slices.Contains(Daemons(), p):
			errs = append(errs, fmt.Errorf("--peers: unknown daemon %q (want one of %v)", p, Daemons()))
		}
	}
	return errors.Join(errs...)
}
