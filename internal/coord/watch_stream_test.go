package coord

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

func TestWatchStream(t *testing.T) {
	path := socketPath(t, "proxyd.sock")
	p := NewPublisher(zap.NewNop(), "proxyd", "inc-1")
	a, b, c := vip("10.0.0.1", 80, tcp, "ns/a"), vip("10.0.0.2", 80, tcp, "ns/b"), vip("10.0.0.3", 53, udp, "ns/c")
	pnA, pnB := podNet(1500, "10.244.1.0/24"), podNet(1450, "10.244.1.0/24", "fd00::/64")
	p.SetPodNetwork(pnA)
	p.SetVIPs([]*nodev1.ServiceVIP{a, b})
	servePublisher(t, path, p)

	w1, w2 := openWatch(t, path), openWatch(t, path)
	views := make([]Facts, 2)
	for i, w := range []*rawWatch{w1, w2} {
		m := w.recv()
		if !m.GetSnapshot() || m.GetGeneration() != 2 || m.GetPublisher() != "proxyd" || m.GetIncarnation() != "inc-1" {
			t.Fatalf("watcher %d: first message %v, want a snapshot of proxyd/inc-1/2", i, m)
		}
		views[i] = Facts{}.Apply(m)
		assertFacts(t, views[i], p.Facts())
	}
	if n := p.Watchers(); n != 2 {
		t.Errorf("Watchers() = %d, want 2", n)
	}

	// Four changes in a row, before anyone reads.
	p.SetVIPs([]*nodev1.ServiceVIP{a, b, c})
	p.SetPolicyState(policy(1))
	p.SetPodNetwork(pnB)
	p.SetVIPs([]*nodev1.ServiceVIP{c})
	checks := []func(*nodev1.WatchResponse) bool{
		func(m *nodev1.WatchResponse) bool {
			return sameVIPs(m.GetVipsSet(), []*nodev1.ServiceVIP{c}) && len(m.GetVipsDeleted()) == 0
		},
		func(m *nodev1.WatchResponse) bool {
			return proto.Equal(m.GetPolicyState(), policy(1)) && m.PodNetwork == nil
		},
		func(m *nodev1.WatchResponse) bool { return proto.Equal(m.GetPodNetwork(), pnB) && m.PolicyState == nil },
		func(m *nodev1.WatchResponse) bool {
			return len(m.GetVipsSet()) == 0 && slices.Equal(keysOf(m.GetVipsDeleted()), []VIPKey{KeyOf(a), KeyOf(b)})
		},
	}
	for i, w := range []*rawWatch{w1, w2} {
		for j, check := range checks {
			m := w.recv()
			if m.GetSnapshot() || m.GetGeneration() != views[i].Generation+1 || m.GetIncarnation() != "inc-1" || !check(m) {
				t.Fatalf("watcher %d, change %d: got %v after generation %d", i, j, m, views[i].Generation)
			}
			views[i] = views[i].Apply(m)
		}
		assertFacts(t, views[i], p.Facts())
		if views[i].Generation != 6 {
			t.Errorf("watcher %d at generation %d, want 6", i, views[i].Generation)
		}
	}

	// A watcher that goes away is forgotten.
	w1.cancel()
	eventually(t, "one watcher left", nil, func() bool { return p.Watchers() == 1 })
	p.SetVIPs(nil)
	if m := w2.recv(); m.GetGeneration() != 7 || len(m.GetVipsDeleted()) != 1 {
		t.Fatalf("remaining watcher got %v", m)
	}
}

func TestWatchUnsetPodNetworkSendsSnapshot(t *testing.T) {
	path := socketPath(t, "routerd.sock")
	p := NewPublisher(zap.NewNop(), "routerd", "inc-1")
	p.SetVIPs([]*nodev1.ServiceVIP{vip("10.0.0.1", 80, tcp, "ns/a")})
	servePublisher(t, path, p)
	w := openWatch(t, path)

	view := Facts{}.Apply(w.recv())
	p.SetPodNetwork(podNet(1500, "10.244.1.0/24"))
	m := w.recv()
	if m.GetSnapshot() || m.GetPodNetwork().GetMtu() != 1500 || m.GetGeneration() != 2 {
		t.Fatalf("got %v, want the pod network as change 2", m)
	}
	view = view.Apply(m)

	p.SetPodNetwork(nil)
	m = w.recv()
	if !m.GetSnapshot() || m.PodNetwork != nil || m.GetGeneration() != 3 || len(m.GetVipsSet()) != 1 {
		t.Fatalf("got %v, want a snapshot of generation 3 without pod network", m)
	}
	view = view.Apply(m)
	if view.PodNetwork != nil {
		t.Fatalf("the watcher still has a pod network: %s", describe(view))
	}
	assertFacts(t, view, p.Facts())
}

func TestWatchSlowWatcherOverSocket(t *testing.T) {
	path := socketPath(t, "proxyd.sock")
	p := NewPublisher(zap.NewNop(), "proxyd", "inc-1")
	servePublisher(t, path, p)
	// A fixed, small receive window: what the watcher does not read stays
	// with the publisher's stream.
	w := openWatch(t, path, grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	view := Facts{}.Apply(w.recv())

	const changes = 1000
	pad := strings.Repeat("x", 8<<10) // ~8 KiB a change, 8 MB in all
	for i := 1; i <= changes; i++ {
		p.SetVIPs([]*nodev1.ServiceVIP{vip("10.0.0.1", 80, tcp, fmt.Sprint(i, pad))})
	}
	// The publisher is done: it never waits for a watcher, and holds no
	// more than maxQueued changes for it (the stream is stuck in Send).
	p.mu.Lock()
	for s := range p.subs {
		if len(s.queue) > maxQueued {
			t.Errorf("%d changes queued for a watcher, more than %d", len(s.queue), maxQueued)
		}
	}
	p.mu.Unlock()

	snapshots, received := 0, 0
	for view.Generation != changes {
		m := w.recv()
		received++
		if m.GetSnapshot() {
			snapshots++
		} else if m.GetGeneration() != view.Generation+1 {
			t.Fatalf("change %d after generation %d", m.GetGeneration(), view.Generation)
		}
		view = view.Apply(m)
	}
	// At least one: the stream may catch up for a moment (one snapshot) and
	// fall behind again (another).
	if snapshots == 0 {
		t.Error("no snapshot after the first: the watcher got every change")
	}
	if received >= changes {
		t.Errorf("received %d messages for %d changes: the backlog was not dropped", received, changes)
	}
	assertFacts(t, view, p.Facts())
	t.Logf("%d changes arrived as %d messages (%d snapshots)", changes, received, snapshots)
}

func TestWatchEndsWhenPublisherCloses(t *testing.T) {
	path := socketPath(t, "firewalld.sock")
	p := NewPublisher(zap.NewNop(), "firewalld", "inc-1")
	ts := servePublisher(t, path, p)
	w := openWatch(t, path)
	w.recv()

	p.Close()
	p.Close() // twice is fine
	_, err := w.stream.Recv()
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "firewalld is shutting down") {
		t.Fatalf("Recv after Close = %v, want Unavailable: firewalld is shutting down", err)
	}
	eventually(t, "no watchers", nil, func() bool { return p.Watchers() == 0 })

	// A watch that starts after Close ends at once too (after at most the
	// snapshot).
	w2 := openWatch(t, path)
	for i := 0; ; i++ {
		m, err := w2.stream.Recv()
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("Recv = %v, want Unavailable", err)
			}
			break
		}
		if i > 0 || !m.GetSnapshot() {
			t.Fatalf("closed publisher sent %v", m)
		}
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after stop: %v", err)
	}
}

func TestPublisherCloseWhilePublishing(t *testing.T) {
	path := socketPath(t, "proxyd.sock")
	p := NewPublisher(zap.NewNop(), "proxyd", "inc-1")
	servePublisher(t, path, p)
	var watches []*rawWatch
	for range 3 {
		w := openWatch(t, path)
		w.recv()
		watches = append(watches, w)
	}

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p.SetVIPs([]*nodev1.ServiceVIP{vip("10.0.0.1", 80, tcp, fmt.Sprint("ns/", i))})
		}
	}()
	// Close while the facts change: every stream ends, nothing races.
	eventually(t, "some changes", nil, func() bool { return p.Facts().Generation > 10 })
	p.Close()
	for i, w := range watches {
		for {
			_, err := w.stream.Recv()
			if err == nil {
				continue
			}
			if status.Code(err) != codes.Unavailable {
				t.Errorf("watch %d ended with %v, want Unavailable", i, err)
			}
			break
		}
	}
	close(stop)
	<-done
}
