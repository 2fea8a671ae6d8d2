package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/grpcserver"
	"github.com/nodenet/nodenet/internal/health"
	"github.com/nodenet/nodenet/internal/kube"
	"github.com/nodenet/nodenet/internal/lifecycle"
	"github.com/nodenet/nodenet/internal/metrics"
	"github.com/nodenet/nodenet/internal/runner"
	"github.com/nodenet/nodenet/internal/statusapi"
	"github.com/nodenet/nodenet/internal/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/utils/clock"
)

// stopGrace bounds how long open gRPC calls may take to finish on shutdown.
const stopGrace = 5 * time.Second

// Daemon is one assembled daemon. New wires it, Start serves, Stop stops.
type Daemon struct {
	spec Spec
	cfg  config.Common
	log  *zap.Logger

	tracker    *health.Tracker
	grpcHealth *health.GRPC
	syncM      *metrics.Sync
	stats      *statusapi.SyncStats
	versions   *kube.Versions
	publisher  *coord.Publisher
	watchers   []*coord.Watcher
	controller Controller
	runner     *runner.Runner
	grpcServer *grpc.Server
	httpServer *http.Server
	lc         *lifecycle.Lifecycle

	metricsAddr net.Addr
	runCtx      context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// New assembles a daemon; nothing runs until Start.
func New(spec Spec, cfg config.Common, log *zap.Logger) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	clk := clock.RealClock{}
	d := &Daemon{spec: spec, cfg: cfg, log: log, lc: lifecycle.New(log)}
	d.tracker = health.NewTracker(clk, cfg.HealthTimeout)
	d.grpcHealth = health.NewGRPC(d.tracker, spec.Name)
	d.syncM = metrics.NewSync(spec.Name)
	d.stats = &statusapi.SyncStats{}
	d.versions = kube.NewVersions()
	d.publisher = coord.NewPublisher(log, spec.Name, newIncarnation())

	d.runner = runner.New(d.sync, runner.Config{
		MinInterval: cfg.SyncMinInterval,
		MaxInterval: cfg.SyncMaxInterval,
		Clock:       clk,
		OnResult:    d.observe,
	})
	peers := map[string]*coord.Watcher{}
	for _, p := range cfg.Peers {
		w := coord.NewWatcher(log, coord.WatcherConfig{
			Self: spec.Name, Peer: p, Socket: config.SocketPath(cfg.RunDir, p), OnUpdate: d.Trigger,
		})
		peers[p] = w
		d.watchers = append(d.watchers, w)
	}

	reg := metrics.NewRegistry()
	reg.MustRegister(d.syncM.Collectors()...)
	d.controller = idle{}
	if spec.NewController != nil {
		c, err := spec.NewController(Deps{Log: log, Config: cfg, Publisher: d.publisher, Peers: peers, Trigger: d.Trigger,
			Versions: d.versions, Metrics: reg, Healthy: func() bool { return d.tracker.Check().Healthy }})
		if err != nil {
			return nil, fmt.Errorf("build %s controller: %w", spec.Name, err)
		}
		d.controller = c
	}

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	health.Register(mux, d.tracker)
	if cfg.Profiling {
		registerProfiling(mux)
	}
	d.httpServer = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	reporters := make([]statusapi.PeerReporter, len(d.watchers))
	for i, w := range d.watchers {
		reporters[i] = w
	}
	d.grpcServer = grpcserver.New(log)
	healthpb.RegisterHealthServer(d.grpcServer, d.grpcHealth)
	nodev1.RegisterFactsServiceServer(d.grpcServer, d.publisher)
	status := &statusapi.Server{
		Daemon: spec.Name, NodeName: cfg.NodeName, Build: version.Get(), Start: clk.Now(),
		Health: d.tracker, Sync: d.stats, Pending: d.runner.Pending, Counts: d.controller.Counts,
		Peers: reporters, Facts: d.publisher.Facts,
	}
	if det, ok := d.controller.(StatusDetailer); ok {
		status.Details = det.StatusDetails
	}
	nodev1.RegisterStatusServiceServer(d.grpcServer, status)
	if gs, ok := d.controller.(GRPCServer); ok {
		gs.RegisterServices(d.grpcServer)
	}
	return d, nil
}

func newIncarnation() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}

// Trigger records a change and asks for a sync.
func (d *Daemon) Trigger() {
	d.tracker.QueuedUpdate()
	d.syncM.Pending.Set(1)
	d.runner.Trigger()
}

// Publisher is the daemon's facts publisher.
func (d *Daemon) Publisher() *coord.Publisher { return d.publisher }

// MetricsAddr is the address /metrics listens on (nil when disabled).
func (d *Daemon) MetricsAddr() net.Addr { return d.metricsAddr }

// sync runs one sync of the controller. The versions are snapshot before
// it starts: every event in the snapshot had reached the informers' stores,
// so the sync read those objects (or newer ones) from the listers. A
// snapshot taken after could claim events that arrived while the sync was
// past the lister it came from. Only a successful sync moves what status
// reports as applied.
func (d *Daemon) sync(ctx context.Context, full bool) error {
	covered := d.versions.Snapshot()
	if err := d.controller.Sync(ctx, full); err != nil {
		return err
	}
	d.stats.Applied(covered)
	return nil
}

func (d *Daemon) observe(r runner.Result) {
	queuedAt := d.tracker.Check().QueuedAt
	end := r.Start.Add(r.Duration)
	d.stats.Observe(r)
	if r.Err != nil {
		d.syncM.Observe(r.Full, r.Duration, r.Err, time.Time{}, end)
		d.log.Warn("sync failed; will retry", zap.Error(r.Err), zap.Int("failures", r.Failures), zap.Bool("full", r.Full))
		return
	}
	if queuedAt.After(r.Start) {
		queuedAt = time.Time{} // queued during this sync: the next one applies it
	}
	d.syncM.Observe(r.Full, r.Duration, nil, queuedAt, end)
	d.tracker.Updated(r.Start)
	if !d.runner.Pending() {
		d.syncM.Pending.Set(0)
	}
	d.log.Debug("synced", zap.Duration("took", r.Duration), zap.Bool("full", r.Full))
}

// Start serves the socket and metrics, starts the watchers and the
// controller, then the sync loop. It returns once all of that runs.
func (d *Daemon) Start(ctx context.Context) error {
	// Goroutines outlive ctx (which may only bound the start); Stop ends them.
	d.runCtx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	d.tracker.QueuedUpdate() // the first sync is owed from the start
	d.lc.Append(d.grpcHook())
	d.lc.Append(d.httpHook())
	d.lc.Append(d.goHook("health refresh", func(ctx context.Context) { d.grpcHealth.Run(ctx, clock.RealClock{}, time.Second) }))
	for _, w := range d.watchers {
		d.lc.Append(d.goHook("watch "+w.Peer(), w.Run))
	}
	d.lc.Append(lifecycle.Hook{Name: "controller", OnStart: func(context.Context) error {
		return d.controller.Start(d.runCtx)
	}})
	d.lc.Append(d.goHook("sync loop", d.runner.Run))
	if err := d.lc.Start(ctx); err != nil {
		d.cancel()
		d.wg.Wait()
		return err
	}
	d.log.Info("started", zap.String("node", d.cfg.NodeName), zap.String("socket", config.SocketPath(d.cfg.RunDir, d.spec.Name)),
		zap.Stringer("version", version.Get()), zap.Strings("peers", d.cfg.Peers))
	return nil
}

// Stop stops everything in reverse order. The datapath is left as it is: a
// restarting daemon adopts it and converges by diff.
func (d *Daemon) Stop(ctx context.Context) error {
	if d.cancel == nil {
		return nil // never started
	}
	err := d.lc.Stop(ctx)
	d.cancel()
	d.wg.Wait()
	d.log.Info("stopped")
	return err
}

// goHook runs fn in a goroutine from start with a context of its own;
// stopping cancels that context and waits for fn to return, so goroutines
// stop one by one in reverse start order.
func (d *Daemon) goHook(name string, fn func(ctx context.Context)) lifecycle.Hook {
	done := make(chan struct{})
	var cancel context.CancelFunc
	return lifecycle.Hook{
		Name: name,
		OnStart: func(context.Context) error {
			var ctx context.Context
			ctx, cancel = context.WithCancel(d.runCtx)
			d.wg.Go(func() {
				defer close(done)
				fn(ctx)
			})
			return nil
		},
		OnStop: func(ctx context.Context) error {
			cancel()
			select {
			case <-done:
				return nil
			case <-ctx.Done():
				return fmt.Errorf("%s did not stop: %w", name, ctx.Err())
			}
		},
	}
}

func (d *Daemon) grpcHook() lifecycle.Hook {
	var sock *grpcserver.Socket
	return lifecycle.Hook{
		Name: "grpc",
		OnStart: func(context.Context) error {
			var err error
			sock, err = grpcserver.Listen(config.SocketPath(d.cfg.RunDir, d.spec.Name))
			if err != nil {
				return err
			}
			d.wg.Go(func() {
				if err := d.grpcServer.Serve(sock.Listener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
					d.log.Error("gRPC server failed", zap.Error(err))
				}
			})
			return nil
		},
		OnStop: func(ctx context.Context) error {
			d.publisher.Close() // ends watch streams, which would hold GracefulStop
			d.grpcHealth.Shutdown()
			done := make(chan struct{})
			go func() {
				d.grpcServer.GracefulStop()
				close(done)
			}()
			t := time.NewTimer(stopGrace)
			defer t.Stop()
			select {
			case <-done:
			case <-t.C:
				d.grpcServer.Stop()
			case <-ctx.Done():
				d.grpcServer.Stop()
			}
			return sock.Close()
		},
	}
}

func (d *Daemon) httpHook() lifecycle.Hook {
	return lifecycle.Hook{
		Name: "http",
		OnStart: func(context.Context) error {
			if d.cfg.MetricsAddr == "" {
				return nil
			}
			l, err := net.Listen("tcp", d.cfg.MetricsAddr)
			if err != nil {
				return err
			}
			d.metricsAddr = l.Addr()
			d.wg.Go(func() {
				if err := d.httpServer.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
					d.log.Error("metrics server failed", zap.Error(err))
				}
			})
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if d.metricsAddr == nil {
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, stopGrace)
			defer cancel()
			return d.httpServer.Shutdown(ctx)
		},
	}
}
