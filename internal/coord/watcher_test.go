package coord

import (
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	clocktesting "k8s.io/utils/clock/testing"
)

// runningWatcher is a Watcher whose Run goroutine the test owns.
type runningWatcher struct {
	*Watcher
	updates chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
}

func watcherConfig(path string, updates chan struct{}) WatcherConfig {
	return WatcherConfig{
		Self: "proxyd", Peer: "routerd", Socket: path,
		OnUpdate: func() {
			select {
			case updates <- struct{}{}:
			default:
			}
		},
		RetryInitial: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond,
	}
}

// startWatcher runs a watcher of path until the end of the test.
func startWatcher(t *testing.T, path string) *runningWatcher {
	t.Helper()
	updates := make(chan struct{}, 1)
	w := NewWatcher(zap.NewNop(), watcherConfig(path, updates))
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWatcher{Watcher: w, updates: updates, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rw.done)
		w.Run(ctx)
	}()
	t.Cleanup(rw.stop)
	return rw
}

func (rw *runningWatcher) stop() {
	rw.cancel()
	<-rw.done
}

// waitFor waits until cond holds for the watcher.
func (rw *runningWatcher) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually(t, what, rw.updates, cond)
}

// waitForFacts waits until the watcher holds pub's current facts.
func (rw *runningWatcher) waitForFacts(t *testing.T, pub *Publisher) {
	t.Helper()
	want := pub.Facts()
	rw.waitFor(t, "facts of "+want.Incarnation, func() bool {
		got := rw.Facts()
		return got.Incarnation == want.Incarnation && got.Generation == want.Generation
	})
	assertFacts(t, rw.Facts(), want)
}

func TestWatcherFollowsPublisher(t *testing.T) {
	path := socketPath(t, "routerd.sock")
	p := NewPublisher(zap.NewNop(), "routerd", "inc-1")
	p.SetPodNetwork(podNet(1500, "10.244.1.0/24"))
	p.SetVIPs([]*nodev1.ServiceVIP{vip("10.0.0.1", 80, tcp, "ns/a")})
	servePublisher(t, path, p)

	start := time.Now()
	w := startWatcher(t, path)
	if w.Peer() != "routerd" {
		t.Errorf("Peer() = %q", w.Peer())
	}
	w.waitForFacts(t, p)
	st := w.Status()
	if !st.GetConnected() || st.GetName() != "routerd" || st.GetSocket() != path || st.GetIncarnation() != "inc-1" ||
		st.GetGeneration() != 2 || st.GetLastError() != "" {
		t.Fatalf("status = %v", st)
	}
	if seen := st.GetLastSeen().AsTime(); seen.Before(start.Add(-time.Second)) || seen.After(time.Now().Add(time.Second)) {
		t.Errorf("last seen %v, want about now", seen)
	}
	eventually(t, "the watcher's stream at the publisher", nil, func() bool { return p.Watchers() == 1 })

	// Changes follow, one generation at a time.
	for i, set := range []func(){
		func() { p.SetPolicyState(policy(3)) },
		func() { p.SetVIPs(nil) },
		func() { p.SetPodNetwork(podNet(9000, "10.244.1.0/24")) },
		func() { p.SetPodNetwork(nil) }, // a snapshot
		func() { p.SetVIPs([]*nodev1.ServiceVIP{vip("10.0.0.2", 53, udp, "ns/dns")}) },
	} {
		set()
		w.waitForFacts(t, p)
		if st := w.Status(); !st.GetConnected() || st.GetGeneration() != uint64(3+i) {
			t.Fatalf("step %d: status %v", i, st)
		}
	}
	if f := w.Facts(); f.PodNetwork != nil || len(f.VIPs) != 1 || f.PolicyState.GetAppliedGeneration() != 3 {
		t.Fatalf("final facts %s", describe(f))
	}

	// Stopping the watcher ends its stream.
	w.stop()
	eventually(t, "the stream to end", nil, func() bool { return p.Watchers() == 0 })
}

func TestWatcherKeepsFactsAndFollowsNewIncarnation(t *testing.T) {
	path := socketPath(t, "routerd.sock")
	old := NewPublisher(zap.NewNop(), "routerd", "inc-old")
	old.SetPodNetwork(podNet(1500, "10.244.1.0/24"))
	old.SetVIPs([]*nodev1.ServiceVIP{vip("10.0.0.1", 80, tcp, "ns/a"), vip("10.0.0.2", 80, tcp, "ns/b")})
	old.SetPolicyState(policy(5))
	oldServer := servePublisher(t, path, old)

	w := startWatcher(t, path)
	w.waitForFacts(t, old)
	kept := old.Facts()

	// The peer goes away: disconnected, but the facts stay.
	if err := oldServer.stop(); err != nil {
		t.Fatal(err)
	}
	// (Between Close and Stop the watcher may get one more snapshot of the
	// closing publisher: same facts; so look at one status at a time.)
	var st *nodev1.PeerStatus
	w.waitFor(t, "disconnected", func() bool {
		st = w.Status()
		return !st.GetConnected() && st.GetLastError() != ""
	})
	if st.GetIncarnation() != "inc-old" || st.GetGeneration() != kept.Generation {
		t.Errorf("status while the peer is gone = %v", st)
	}
	assertFacts(t, w.Facts(), kept)

	// A new run of the peer, with other facts, on the same socket.
	next := NewPublisher(zap.NewNop(), "routerd", "inc-new")
	next.SetVIPs([]*nodev1.ServiceVIP{vip("10.0.0.3", 443, tcp, "ns/c")})
	servePublisher(t, path, next)
	w.waitForFacts(t, next)
	f := w.Facts()
	if f.PodNetwork != nil || f.PolicyState != nil || len(f.VIPs) != 1 || f.Generation != 1 {
		t.Fatalf("facts of the new incarnation still hold old ones: %s", describe(f))
	}
	st = w.Status()
	if !st.GetConnected() || st.GetIncarnation() != "inc-new" || st.GetGeneration() != 1 || st.GetLastError() != "" {
		t.Fatalf("status after reconnect = %v", st)
	}

	// And it follows the new one's changes.
	next.SetPodNetwork(podNet(1450, "10.244.7.0/24"))
	w.waitForFacts(t, next)
}

func TestWatcherStartsBeforePublisher(t *testing.T) {
	path := socketPath(t, "routerd.sock")
	w := startWatcher(t, path)
	if st := w.Status(); st.GetConnected() || w.Facts().Known || st.GetLastSeen() != nil {
		t.Fatalf("connected to nothing: %v, %s", st, describe(w.Facts()))
	}
	if f := w.Facts(); f.Publisher != "routerd" {
		t.Errorf("facts before the first snapshot name %q, want the peer", f.Publisher)
	}

	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket exists before the publisher: %v", err)
	}

	// Something appears at the path that is no gRPC server: the watcher
	// connects to it (it is trying), fails, and goes on trying.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	conn, err := l.Accept()
	if err != nil {
		t.Fatalf("the watcher did not try to connect: %v", err)
	}
	_ = conn.Close()
	_ = l.Close()
	if st := w.Status(); st.GetConnected() || w.Facts().Known {
		t.Fatalf("connected to a non-server: %v", st)
	}

	p := NewPublisher(zap.NewNop(), "routerd", "inc-1")
	p.SetPodNetwork(podNet(1500, "10.244.1.0/24"))
	servePublisher(t, path, p)
	w.waitForFacts(t, p)
	if !w.Status().GetConnected() || !w.Facts().Known {
		t.Fatalf("status %v", w.Status())
	}
}

func TestWatcherRunEndsWithContext(t *testing.T) {
	path := socketPath(t, "routerd.sock")
	updates := make(chan struct{}, 1)
	w := NewWatcher(zap.NewNop(), watcherConfig(path, updates))

	// Cancelled while waiting for a peer that never comes.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel")
	}
	if st := w.Status(); st.GetConnected() {
		t.Errorf("status after Run = %v", st)
	}
}

// scriptedServer is a FactsService that sends stream i script[i] (the last
// script for all later streams), or fails it with the script's error.
type scriptedServer struct {
	nodev1.UnimplementedFactsServiceServer
	mu       sync.Mutex
	scripts  []script
	watchers []string
}

type script struct {
	msgs []*nodev1.WatchResponse
	err  error
}

func (s *scriptedServer) Watch(req *nodev1.WatchRequest, stream nodev1.FactsService_WatchServer) error {
	s.mu.Lock()
	sc := s.scripts[min(len(s.watchers), len(s.scripts)-1)]
	s.watchers = append(s.watchers, req.GetWatcher())
	s.mu.Unlock()
	if sc.err != nil {
		return sc.err
	}
	for _, m := range sc.msgs {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	<-stream.Context().Done()
	return nil
}

func (s *scriptedServer) streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watchers)
}

func (s *scriptedServer) watcherNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.watchers)
}

func (s *scriptedServer) setScripts(sc ...script) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts = sc
}

func serveScripted(t *testing.T, path string, sc ...script) *scriptedServer {
	t.Helper()
	s := &scriptedServer{scripts: sc}
	serve(t, path, nil, func(srv *grpc.Server) { nodev1.RegisterFactsServiceServer(srv, s) })
	return s
}

func msg(inc string, gen uint64, snapshot bool, vips ...*nodev1.ServiceVIP) *nodev1.WatchResponse {
	return &nodev1.WatchResponse{Publisher: "routerd", Incarnation: inc, Generation: gen, Snapshot: snapshot, VipsSet: vips}
}

func TestWatcherResyncsOnGap(t *testing.T) {
	a, b, c, d := vip("10.0.0.1", 80, tcp, "ns/a"), vip("10.0.0.2", 80, tcp, "ns/b"), vip("10.0.0.3", 80, tcp, "ns/c"), vip("10.0.0.4", 80, tcp, "ns/d")
	for _, tc := range []struct {
		name  string
		first []*nodev1.WatchResponse
		then  *nodev1.WatchResponse
	}{{
		name:  "generation skipped",
		first: []*nodev1.WatchResponse{msg("i1", 1, true, a), msg("i1", 2, false, b), msg("i1", 4, false, c)},
		then:  msg("i1", 4, true, a, b, d),
	}, {
		name:  "generation repeated",
		first: []*nodev1.WatchResponse{msg("i1", 1, true, a), msg("i1", 2, false, b), msg("i1", 2, false, c)},
		then:  msg("i1", 3, true, a, b, d),
	}, {
		name:  "change of another incarnation",
		first: []*nodev1.WatchResponse{msg("i1", 1, true, a), msg("i2", 2, false, c)},
		then:  msg("i2", 2, true, b, d),
	}, {
		name:  "change before any snapshot",
		first: []*nodev1.WatchResponse{msg("i1", 1, false, c)},
		then:  msg("i1", 1, true, a, d),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			path := socketPath(t, "routerd.sock")
			srv := serveScripted(t, path, script{msgs: tc.first}, script{msgs: []*nodev1.WatchResponse{tc.then}})
			w := startWatcher(t, path)
			w.waitFor(t, "the second stream's snapshot", func() bool {
				f := w.Facts()
				return f.Incarnation == tc.then.GetIncarnation() && f.Generation == tc.then.GetGeneration() && f.VIPs[KeyOf(d)] != nil
			})
			// Exactly the snapshot: the change after the gap was never applied.
			assertFacts(t, w.Facts(), Facts{}.Apply(tc.then))
			if n := srv.streams(); n != 2 {
				t.Errorf("%d watch streams, want 2", n)
			}
			if st := w.Status(); !st.GetConnected() || st.GetLastError() != "" {
				t.Errorf("status = %v", st)
			}
		})
	}
}

func TestWatcherRetriesFailingStreams(t *testing.T) {
	path := socketPath(t, "routerd.sock")
	srv := serveScripted(t, path, script{err: status.Error(codes.Internal, "boom")})
	w := startWatcher(t, path)
	// With 10ms..50ms between attempts, a few attempts come quickly.
	eventually(t, "retries", nil, func() bool { return srv.streams() >= 3 })
	st := w.Status()
	if st.GetConnected() || !strings.Contains(st.GetLastError(), "boom") || w.Facts().Known {
		t.Fatalf("status while streams fail = %v", st)
	}
	for _, name := range srv.watcherNames() {
		if name != "proxyd" {
			t.Errorf("watch request names %q, want proxyd", name)
		}
	}

	// The peer works again.
	srv.setScripts(script{msgs: []*nodev1.WatchResponse{msg("i1", 5, true, vip("10.0.0.1", 80, tcp, "ns/a"))}})
	w.waitFor(t, "connected", func() bool { return w.Status().GetConnected() })
	if st := w.Status(); st.GetLastError() != "" || st.GetGeneration() != 5 || st.GetIncarnation() != "i1" {
		t.Fatalf("status after recovery = %v", st)
	}
}

func TestWatcherApply(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(now)
	updates := 0
	w := NewWatcher(zap.NewNop(), WatcherConfig{Self: "proxyd", Peer: "routerd", Socket: "/nowhere", Clock: clk, OnUpdate: func() { updates++ }})
	a, b := vip("10.0.0.1", 80, tcp, "ns/a"), vip("10.0.0.2", 80, tcp, "ns/b")

	if err := w.apply(msg("i1", 1, false, a)); !errors.Is(err, errGap) {
		t.Fatalf("change before a snapshot: %v, want errGap", err)
	}
	if updates != 0 || w.Facts().Known {
		t.Fatalf("a refused change was applied: %s", describe(w.Facts()))
	}
	if err := w.apply(msg("i1", 1, true, a)); err != nil {
		t.Fatal(err)
	}
	if err := w.apply(msg("i1", 2, false, b)); err != nil {
		t.Fatal(err)
	}
	if updates != 2 {
		t.Errorf("%d updates, want 2", updates)
	}
	st := w.Status()
	if !st.GetConnected() || st.GetGeneration() != 2 || !st.GetLastSeen().AsTime().Equal(now) {
		t.Fatalf("status = %v", st)
	}
	for _, bad := range []*nodev1.WatchResponse{msg("i1", 4, false), msg("i1", 2, false), msg("i1", 1, false), msg("i2", 3, false)} {
		if err := w.apply(bad); !errors.Is(err, errGap) {
			t.Errorf("apply(%v) = %v, want errGap", bad, err)
		}
	}
	if f := w.Facts(); f.Generation != 2 || len(f.VIPs) != 2 {
		t.Fatalf("refused changes were applied: %s", describe(f))
	}

	// Lost: the facts stay, the status says so, and a change, even the next
	// one, is refused until a new snapshot.
	clk.Step(time.Minute)
	w.setError(errors.New("connection reset"))
	if updates != 3 {
		t.Errorf("%d updates, want 3 (losing the peer is one)", updates)
	}
	st = w.Status()
	if st.GetConnected() || st.GetLastError() != "connection reset" || st.GetGeneration() != 2 || !st.GetLastSeen().AsTime().Equal(now) {
		t.Fatalf("status after loss = %v", st)
	}
	if f := w.Facts(); !f.Known || len(f.VIPs) != 2 {
		t.Fatalf("facts lost with the peer: %s", describe(f))
	}
	w.setError(errors.New("still down"))
	if updates != 3 {
		t.Errorf("%d updates, want 3 (no news while already lost)", updates)
	}
	if err := w.apply(msg("i1", 3, false)); !errors.Is(err, errGap) {
		t.Errorf("change while disconnected: %v, want errGap", err)
	}

	// The peer restarted: its snapshot replaces everything.
	if err := w.apply(msg("i2", 1, true, b)); err != nil {
		t.Fatal(err)
	}
	st = w.Status()
	if !st.GetConnected() || st.GetLastError() != "" || st.GetIncarnation() != "i2" || !st.GetLastSeen().AsTime().Equal(now.Add(time.Minute)) {
		t.Fatalf("status after the new snapshot = %v", st)
	}
	if f := w.Facts(); len(f.VIPs) != 1 || !proto.Equal(f.VIPs[KeyOf(b)], b) {
		t.Fatalf("facts after the new snapshot: %s", describe(f))
	}
}

func TestNewWatcherDefaults(t *testing.T) {
	for _, tc := range []struct {
		initial, max         time.Duration
		wantInitial, wantMax time.Duration
	}{
		{0, 0, 100 * time.Millisecond, 5 * time.Second},
		{10 * time.Millisecond, 50 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond},
		{time.Second, 0, time.Second, 5 * time.Second},
		{10 * time.Second, time.Second, 10 * time.Second, 10 * time.Second},
	} {
		w := NewWatcher(zap.NewNop(), WatcherConfig{Peer: "p", RetryInitial: tc.initial, RetryMax: tc.max})
		if w.cfg.RetryInitial != tc.wantInitial || w.cfg.RetryMax != tc.wantMax || w.cfg.Clock == nil || w.cfg.OnUpdate == nil {
			t.Errorf("NewWatcher(%v, %v): %v, %v, clock %v", tc.initial, tc.max, w.cfg.RetryInitial, w.cfg.RetryMax, w.cfg.Clock)
		}
	}
}
