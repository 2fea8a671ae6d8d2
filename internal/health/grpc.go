package health

import (
	"context"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/utils/clock"
)

// GRPC serves grpc.health.v1 for the overall server ("") and for the daemon's
// name with the tracker's verdict. Check answers from the tracker at call
// time; Watch streams follow a refresh done every interval by Run.
type GRPC struct {
	*health.Server
	tracker *Tracker
	names   []string
}

// NewGRPC returns the health service for a daemon called name.
func NewGRPC(t *Tracker, name string) *GRPC {
	g := &GRPC{Server: health.NewServer(), tracker: t, names: []string{"", name}}
	g.Refresh()
	return g
}

// status is SERVING once a sync has succeeded and while changes are applied
// in time: kubelet's gRPC probe then tells readiness (liveness is /livez).
func (g *GRPC) status() healthpb.HealthCheckResponse_ServingStatus {
	if v := g.tracker.Check(); v.Healthy && v.Ready {
		return healthpb.HealthCheckResponse_SERVING
	}
	return healthpb.HealthCheckResponse_NOT_SERVING
}

// Check is part of healthpb.HealthServer.
func (g *GRPC) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	for _, n := range g.names {
		if req.GetService() == n {
			return &healthpb.HealthCheckResponse{Status: g.status()}, nil
		}
	}
	return g.Server.Check(ctx, req)
}

// Refresh publishes the current verdict to Watch streams.
func (g *GRPC) Refresh() {
	st := g.status()
	for _, n := range g.names {
		g.SetServingStatus(n, st)
	}
}

// Run refreshes every interval until ctx is done, so a verdict that changes
// with time alone (a change waiting too long) reaches Watch streams.
func (g *GRPC) Run(ctx context.Context, clk clock.WithTicker, interval time.Duration) {
	t := clk.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			g.Refresh()
		}
	}
}
