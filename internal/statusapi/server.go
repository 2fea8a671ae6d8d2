package statusapi

import (
	"context"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/health"
	"github.com/nodenet/nodenet/internal/version"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// PeerReporter is what the status knows of a watched peer (a coord.Watcher).
type PeerReporter interface {
	Status() *nodev1.PeerStatus
}

// Server answers StatusService.Get from the daemon's parts.
type Server struct {
	nodev1.UnimplementedStatusServiceServer

	Daemon   string
	NodeName string
	Build    version.Info
	Start    time.Time
	Health   *health.Tracker
	Sync     *SyncStats
	// Pending reports whether a change waits for a sync.
	Pending func() bool
	// Counts returns the daemon's object counts; nil for none.
	Counts func() map[string]uint64
	Peers  []PeerReporter
	Facts  func() coord.Facts
	// Details adds what only this daemon reports (routerd's BGP
	// neighbours); nil for nothing.
	Details func(ctx context.Context, resp *nodev1.GetResponse)
}

// Get is part of nodev1.StatusServiceServer.
func (s *Server) Get(ctx context.Context, _ *nodev1.GetRequest) (*nodev1.GetResponse, error) {
	v := s.Health.Check()
	resp := &nodev1.GetResponse{
		Daemon:       s.Daemon,
		NodeName:     s.NodeName,
		Build:        &nodev1.BuildInfo{Version: s.Build.Version, Commit: s.Build.Commit, GoVersion: s.Build.GoVersion},
		StartTime:    timestamppb.New(s.Start),
		Healthy:      v.Healthy,
		HealthReason: v.Reason,
		Counts:       map[string]uint64{},
		Sync:         s.Sync.Proto(s.Pending()),
	}
	if s.Counts != nil {
		for k, n := range s.Counts() {
			resp.Counts[k] = n
		}
	}
	for _, p := range s.Peers {
		resp.Peers = append(resp.Peers, p.Status())
	}
	if s.Facts != nil {
		f := s.Facts()
		resp.Incarnation, resp.Generation = f.Incarnation, f.Generation
	}
	if s.Details != nil {
		s.Details(ctx, resp)
	}
	return resp, nil
}
