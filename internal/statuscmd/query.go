// Package statuscmd is `<daemon> status`: it asks the daemons of this node
// over their unix sockets for health and status, and renders a table or JSON.
package statuscmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/grpcserver"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// Report is what one daemon answered.
type Report struct {
	Daemon    string `json:"daemon"`
	Socket    string `json:"socket"`
	Reachable bool   `json:"reachable"`
	// Health is the grpc.health.v1 status, or UNREACHABLE.
	Health string `json:"health"`
	Error  string `json:"error,omitempty"`
	// Status is the daemon's StatusService.Get answer (protojson).
	Status json.RawMessage `json:"status,omitempty"`

	status *nodev1.GetResponse
}

// OK reports whether the daemon answered and is healthy.
func (r Report) OK() bool {
	return r.Reachable && r.Health == healthpb.HealthCheckResponse_SERVING.String()
}

// Query asks each daemon of runDir, concurrently, each within timeout.
func Query(ctx context.Context, runDir string, daemons []string, timeout time.Duration) []Report {
	reports := make([]Report, len(daemons))
	var wg sync.WaitGroup
	for i, d := range daemons {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			reports[i] = queryOne(ctx, d, config.SocketPath(runDir, d))
		})
	}
	wg.Wait()
	return reports
}

func queryOne(ctx context.Context, daemon, socket string) Report {
	r := Report{Daemon: daemon, Socket: socket, Health: "UNREACHABLE"}
	if _, err := os.Stat(socket); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			r.Error = "no socket (not running, or disabled on this node)"
		} else {
			r.Error = err.Error()
		}
		return r
	}
	conn, err := grpcserver.Dial(socket)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer func() { _ = conn.Close() }()
	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		r.Error = fmt.Sprintf("health check: %v", err)
		return r
	}
	r.Reachable = true
	r.Health = hr.GetStatus().String()
	st, err := nodev1.NewStatusServiceClient(conn).Get(ctx, &nodev1.GetRequest{})
	if err != nil {
		r.Error = fmt.Sprintf("status: %v", err)
		return r
	}
	r.status = st
	if !st.GetHealthy() && st.GetHealthReason() != "" {
		r.Error = st.GetHealthReason()
	} else if st.GetSync().GetLastError() != "" {
		r.Error = "last sync failed: " + st.GetSync().GetLastError()
	}
	if b, err := protojson.Marshal(st); err == nil {
		r.Status = b
	}
	return r
}
