// Package daemon is the skeleton every nodenet daemon runs on: configuration,
// logging, the sync runner, health, metrics, the gRPC socket with the
// coordination and status services, the peers' watchers, and the
// subcommands run, status, cleanup, prepare and version. A daemon supplies a
// Spec, which may add subcommands and gRPC services of its own; its main is
// one call to Main.
package daemon

import (
	"context"
	"io"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/kube"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Spec describes one daemon.
type Spec struct {
	// Name is "routerd", "proxyd" or "firewalld".
	Name string
	// MetricsPort is the default loopback port of /metrics, /healthz, /livez.
	MetricsPort int
	// SyncMinInterval, when set, replaces the default --sync-min-interval:
	// a daemon whose syncs are cheap and whose latency matters (firewalld:
	// a new pod waits for it) coalesces changes over less time.
	SyncMinInterval time.Duration
	// Flags registers the daemon's own flags for run and cleanup (nil: none);
	// they are read from NODENET_* variables like the shared ones.
	Flags func(fs *pflag.FlagSet)
	// Validate checks the daemon's own flags before anything starts.
	Validate func() error
	// NewController builds the daemon's logic. Nil runs the bare skeleton:
	// health, status and empty facts.
	NewController func(Deps) (Controller, error)
	// Cleanup removes everything the daemon owns on the node, and nothing
	// else. Nil means it owns nothing yet.
	Cleanup func(ctx context.Context, log *zap.Logger, cfg config.Common) error
	// Prepare sets the node up for the daemon with a privilege the daemon
	// itself need not keep: the kernel settings it relies on (a
	// container's /proc/sys is writable only when it is privileged).
	// `<daemon> prepare` runs it, the chart as a privileged init
	// container; run applies the same settings but writes only those that
	// differ, so after prepare it writes none. Nil: nothing to prepare.
	Prepare func(ctx context.Context, log *zap.Logger, cfg config.Common) error
	// Commands are the daemon's own subcommands beside the fixed ones
	// (proxyd trace), by name; a name of a fixed one is never looked up.
	Commands map[string]Command
}

// Command is one of a daemon's own subcommands: typically a client of the
// daemon's socket, like status.
type Command struct {
	// Summary is its line in the usage.
	Summary string
	// Flags registers its flags (nil: none); the skeleton adds --run-dir
	// and parses them, then the NODENET_* variables.
	Flags func(fs *pflag.FlagSet)
	// Run runs it once the flags are parsed and returns the exit code
	// (ExitUsage for bad input it finds itself).
	Run func(ctx context.Context, inv Invocation) int
}

// Invocation is what a Command runs with.
type Invocation struct {
	// Daemon is the daemon's name; Socket the path of its gRPC socket under
	// --run-dir.
	Daemon string
	Socket string
	// RunDir is --run-dir, where every daemon's socket is.
	RunDir string
	Stdout io.Writer
	Stderr io.Writer
}

// Deps is what the skeleton hands a controller.
type Deps struct {
	Log    *zap.Logger
	Config config.Common
	// Publisher takes the facts this daemon owns.
	Publisher *coord.Publisher
	// Peers are the watchers of the configured peers, by name.
	Peers map[string]*coord.Watcher
	// Trigger asks for a sync; informer handlers call it (kube.OnChange).
	Trigger func()
	// Versions records the object versions the informers deliver; the
	// skeleton snapshots it before each sync and reports, per kind, what
	// the last successful one covered. Informer handlers record with
	// kube.OnChangeTracked, or Versions.Observe before they trigger. Nil in
	// tests that build a controller without the skeleton (it records
	// nothing then).
	Versions *kube.Versions
	// Metrics is where the controller registers its own series.
	Metrics prometheus.Registerer
	// Healthy reports the daemon's health verdict (changes applied in time).
	Healthy func() bool
}

// Controller is a daemon's logic, driven by the skeleton's runner.
type Controller interface {
	// Start starts what the controller watches (informers) and returns once
	// it is ready to compute its desired state; the first Sync runs after.
	Start(ctx context.Context) error
	// Sync computes the desired state and applies it. It is only ever called
	// from the runner, never concurrently.
	Sync(ctx context.Context, full bool) error
	// Counts returns object counts for status ("services": 12, ...).
	Counts() map[string]uint64
}

// StatusDetailer is a Controller that adds its own part to the status
// (routerd: its BGP neighbours). It is called from gRPC handlers,
// concurrently with Sync.
type StatusDetailer interface {
	StatusDetails(ctx context.Context, resp *nodev1.GetResponse)
}

// GRPCServer is a Controller that serves gRPC services of its own on the
// daemon's socket (proxyd: its trace). RegisterServices is called once,
// before the socket serves; the handlers run concurrently with Sync.
type GRPCServer interface {
	RegisterServices(s grpc.ServiceRegistrar)
}

// idle is the controller of a daemon whose logic has not landed: it owns and
// programs nothing, so every sync succeeds at once.
type idle struct{}

func (idle) Start(context.Context) error      { return nil }
func (idle) Sync(context.Context, bool) error { return nil }
func (idle) Counts() map[string]uint64        { return nil }
