package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// panicky is a health service whose Check panics, standing in for a handler bug.
type panicky struct {
	healthpb.UnimplementedHealthServer
}

func (panicky) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	panic("bug")
}

func TestPanicBecomesInternalAndServerSurvives(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	path := filepath.Join(shortDir(t), "x.sock")
	sock, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := New(zap.New(core))
	healthpb.RegisterHealthServer(srv, panicky{})
	go func() { _ = srv.Serve(sock.Listener) }()
	defer func() {
		srv.Stop()
		_ = sock.Close()
	}()

	conn, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 { // the second call proves the server is still up
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if status.Code(err) != codes.Internal {
			t.Fatalf("err = %v, want Internal", err)
		}
	}
	if n := logs.FilterMessage("panic in gRPC handler").Len(); n != 2 {
		t.Fatalf("%d panic logs, want 2", n)
	}
}

func TestToStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{nil, codes.OK},
		{context.Canceled, codes.Canceled},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{fmt.Errorf("routerd: %w", ErrNotReady), codes.Unavailable},
		{status.Error(codes.NotFound, "x"), codes.NotFound},
		{errors.New("boom"), codes.Internal},
	} {
		if got := status.Code(ToStatus(tc.err)); got != tc.want {
			t.Errorf("ToStatus(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
