package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/backoff"
	"github.com/nodenet/nodenet/internal/grpcserver"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/utils/clock"
)

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// Self is the watching daemon's name; Peer the watched one's.
	Self, Peer string
	// Socket is the peer's unix socket path.
	Socket string
	// OnUpdate is called (from the watcher's goroutine) after the facts or
	// the connection state changed. It must not block.
	OnUpdate func()
	// RetryInitial and RetryMax bound the wait between two watch attempts
	// when a stream fails at once (defaults 100ms and 5s); the connection
	// itself is re-established by gRPC with its own backoff.
	RetryInitial, RetryMax time.Duration
	Clock                  clock.Clock
}

// Watcher follows one peer's facts. While the peer is unreachable it keeps
// the last facts it received: a restarting neighbour changes nothing.
type Watcher struct {
	cfg WatcherConfig
	log *zap.Logger

	mu        sync.Mutex
	facts     Facts
	connected bool
	lastSeen  time.Time
	lastErr   string
}

// NewWatcher returns a watcher; Run starts it.
func NewWatcher(log *zap.Logger, cfg WatcherConfig) *Watcher {
	if cfg.RetryInitial <= 0 {
		cfg.RetryInitial = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryInitial {
		cfg.RetryMax = max(5*time.Second, cfg.RetryInitial)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.OnUpdate == nil {
		cfg.OnUpdate = func() {}
	}
	return &Watcher{cfg: cfg, log: log.Named("watch").With(zap.String("peer", cfg.Peer)), facts: Facts{Publisher: cfg.Peer}}
}

// Peer is the name of the watched daemon.
func (w *Watcher) Peer() string { return w.cfg.Peer }

// Facts returns the last facts received (Known is false before the first).
func (w *Watcher) Facts() Facts {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.facts
}

// Status reports the watcher for `status`.
func (w *Watcher) Status() *nodev1.PeerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := &nodev1.PeerStatus{
		Name: w.cfg.Peer, Socket: w.cfg.Socket, Connected: w.connected,
		Incarnation: w.facts.Incarnation, Generation: w.facts.Generation, LastError: w.lastErr,
	}
	if !w.lastSeen.IsZero() {
		st.LastSeen = timestamppb.New(w.lastSeen)
	}
	return st
}

// Run watches until ctx is done, reconnecting whenever the stream ends.
func (w *Watcher) Run(ctx context.Context) {
	conn, err := grpcserver.Dial(w.cfg.Socket)
	if err != nil {
		// Only a malformed target fails here; nothing to retry.
		w.setError(err)
		w.log.Error("cannot dial peer", zap.Error(err))
		return
	}
	defer func() { _ = conn.Close() }()
	client := nodev1.NewFactsServiceClient(conn)
	failures := 0
	for {
		received, err := w.watchOnce(ctx, client)
		if ctx.Err() != nil {
			return
		}
		w.setError(err)
		if received {
			failures = 0
		}
		failures++
		t := w.cfg.Clock.NewTimer(backoff.Exponential(w.cfg.RetryInitial, w.cfg.RetryMax, failures))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// errGap: a change did not follow the generation we hold; start over with a
// new stream, which begins with a snapshot.
var errGap = errors.New("generation gap")

func (w *Watcher) watchOnce(ctx context.Context, client nodev1.FactsServiceClient) (received bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// WaitForReady: block until the peer's socket accepts, rather than fail
	// at once while it restarts.
	stream, err := client.Watch(ctx, &nodev1.WatchRequest{Watcher: w.cfg.Self}, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return received, err
		}
		if err := w.apply(msg); err != nil {
			return received, err
		}
		received = true
	}
}

func (w *Watcher) apply(msg *nodev1.WatchResponse) error {
	w.mu.Lock()
	if !msg.GetSnapshot() && (!w.connected || msg.GetIncarnation() != w.facts.Incarnation || msg.GetGeneration() != w.facts.Generation+1) {
		err := fmt.Errorf("%w: have %s/%d, got change %s/%d", errGap, w.facts.Incarnation, w.facts.Generation, msg.GetIncarnation(), msg.GetGeneration())
		w.mu.Unlock()
		return err
	}
	if msg.GetSnapshot() && w.facts.Known && w.facts.Incarnation != msg.GetIncarnation() {
		w.log.Info("peer restarted", zap.String("incarnation", msg.GetIncarnation()))
	}
	w.facts = w.facts.Apply(msg)
	w.connected = true
	w.lastErr = ""
	w.lastSeen = w.cfg.Clock.Now()
	w.mu.Unlock()
	w.cfg.OnUpdate()
	return nil
}

func (w *Watcher) setError(err error) {
	w.mu.Lock()
	wasConnected := w.connected
	w.connected = false
	if err != nil {
		w.lastErr = err.Error()
	}
	w.mu.Unlock()
	if wasConnected {
		w.log.Info("lost peer; keeping its last facts", zap.Error(err))
		w.cfg.OnUpdate()
	}
}
