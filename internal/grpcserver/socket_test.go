package grpcserver

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/testutil"
	"go.uber.org/zap"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func shortDir(t *testing.T) string { return testutil.SocketDir(t) }

// checkHealth asks the health service at path and fails the test unless it
// answers SERVING.
func checkHealth(t *testing.T, path string) {
	t.Helper()
	conn, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v", resp.GetStatus())
	}
}

func serveHealth(t *testing.T, path string) (*Socket, func()) {
	t.Helper()
	sock, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(zap.NewNop())
	healthpb.RegisterHealthServer(srv, health.NewServer())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(sock.Listener)
	}()
	return sock, func() {
		srv.Stop()
		<-done
		_ = sock.Close()
	}
}

func TestHealthOverSocketAnswersServing(t *testing.T) {
	path := filepath.Join(shortDir(t), "proxyd.sock")
	_, stop := serveHealth(t, path)
	defer stop()

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}

	checkHealth(t, path)
}

func TestSecondServerCannotTakeServedSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "routerd.sock")
	_, stop := serveHealth(t, path)
	defer stop()

	_, err := Listen(path)
	if err == nil || !strings.Contains(err.Error(), "already served") {
		t.Fatalf("second Listen: err = %v, want 'already served'", err)
	}
	// The first server still answers: the failed attempt removed nothing.
	checkHealth(t, path)
}

func TestStaleSocketIsReplaced(t *testing.T) {
	path := filepath.Join(shortDir(t), "firewalld.sock")
	// A crashed process leaves its socket file behind (and, being dead,
	// no lock): make one without the unlink-on-close of a clean exit.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("stale socket still accepts connections")
	}

	_, stop := serveHealth(t, path)
	defer stop()
	checkHealth(t, path)
}

func TestCloseRemovesSocketAndReleasesLock(t *testing.T) {
	path := filepath.Join(shortDir(t), "proxyd.sock")
	_, stop := serveHealth(t, path)
	stop()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after a clean close: %v", err)
	}
	sock, err := Listen(path)
	if err != nil {
		t.Fatalf("lock not released: %v", err)
	}
	_ = sock.Close()
}
