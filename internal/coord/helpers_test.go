package coord

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/grpcserver"
	"github.com/nodenet/nodenet/internal/testutil"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// waitTimeout bounds every wait of these tests; it is only reached when a
// test fails.
const waitTimeout = 5 * time.Second

// socketPath returns a path for a unix socket in a fresh short directory.
func socketPath(t *testing.T, name string) string {
	return filepath.Join(testutil.SocketDir(t), name)
}

// eventually waits until cond holds, checking it whenever wake fires (may be
// nil) and every few milliseconds.
func eventually(t *testing.T, what string, wake <-chan struct{}, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, waitTimeout, what, wake, cond)
}

// testServer is a gRPC server that serves a FactsService on a unix socket.
type testServer struct {
	srv  *grpc.Server
	sock *grpcserver.Socket
	pub  *Publisher // nil for a hand-written service
	done chan struct{}
	once sync.Once
	err  error
}

// serve starts a gRPC server on path with register's services; it is
// stopped at the end of the test unless stopped before.
func serve(t *testing.T, path string, pub *Publisher, register func(*grpc.Server)) *testServer {
	t.Helper()
	sock, err := grpcserver.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: grpcserver.New(zap.NewNop()), sock: sock, pub: pub, done: make(chan struct{})}
	if pub != nil {
		nodev1.RegisterFactsServiceServer(ts.srv, pub)
	}
	if register != nil {
		register(ts.srv)
	}
	go func() {
		defer close(ts.done)
		if err := ts.srv.Serve(sock.Listener); err != nil {
			t.Errorf("serve %s: %v", path, err)
		}
	}()
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("stop server: %v", err)
		}
	})
	return ts
}

// servePublisher serves pub on path.
func servePublisher(t *testing.T, path string, pub *Publisher) *testServer {
	t.Helper()
	return serve(t, path, pub, nil)
}

// stop stops the server the way a daemon does: the publisher first, then
// gRPC, then the socket.
func (ts *testServer) stop() error {
	ts.once.Do(func() {
		if ts.pub != nil {
			ts.pub.Close()
		}
		ts.srv.Stop()
		<-ts.done
		ts.err = ts.sock.Close()
	})
	return ts.err
}

// rawWatch is a bare Watch stream, to see exactly what the publisher sends.
type rawWatch struct {
	t      *testing.T
	stream nodev1.FactsService_WatchClient
	cancel context.CancelFunc
}

func openWatch(t *testing.T, path string, opts ...grpc.DialOption) *rawWatch {
	t.Helper()
	conn, err := grpcserver.Dial(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	stream, err := nodev1.NewFactsServiceClient(conn).Watch(ctx, &nodev1.WatchRequest{Watcher: "test"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	return &rawWatch{t: t, stream: stream, cancel: cancel}
}

func (w *rawWatch) recv() *nodev1.WatchResponse {
	w.t.Helper()
	msg, err := w.stream.Recv()
	if err != nil {
		w.t.Fatalf("recv: %v", err)
	}
	return msg
}

// subscribe adds a subscriber directly, as Watch does, but without its
// initial resync: it gets every change from now on.
func subscribe(p *Publisher) *subscriber {
	s := &subscriber{watcher: "test", wake: make(chan struct{}, 1)}
	p.mu.Lock()
	p.subs[s] = struct{}{}
	p.mu.Unlock()
	return s
}

func queued(p *Publisher, s *subscriber) (n int, resync bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(s.queue), s.resync
}

// woken reports (and clears) whether s was woken.
func woken(s *subscriber) bool {
	select {
	case <-s.wake:
		return true
	default:
		return false
	}
}

func keysOf(ks []*nodev1.ServiceVIPKey) []VIPKey {
	out := []VIPKey{}
	for _, k := range ks {
		out = append(out, keyFromProto(k))
	}
	return out
}

func sameVIPs(a, b []*nodev1.ServiceVIP) bool {
	return slices.EqualFunc(a, b, func(x, y *nodev1.ServiceVIP) bool { return proto.Equal(x, y) })
}

func cloneAll(vs ...*nodev1.ServiceVIP) []*nodev1.ServiceVIP {
	out := make([]*nodev1.ServiceVIP, len(vs))
	for i, v := range vs {
		out[i] = proto.CloneOf(v)
	}
	return out
}
