// Package statusapi serves nodenet.node.v1.StatusService: what a daemon is
// doing, assembled from its health tracker, sync loop, peers and facts.
package statusapi

import (
	"sync"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/kube"
	"github.com/nodenet/nodenet/internal/runner"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// SyncStats accumulates the results of a daemon's syncs.
type SyncStats struct {
	mu           sync.Mutex
	lastSuccess  time.Time
	lastDuration time.Duration
	lastErr      string
	lastErrTime  time.Time
	syncs        uint64
	failures     uint64
	applied      []kube.ObjectVersion
}

// Applied records the object versions a successful sync covered: the
// informers' snapshot taken before it started.
func (s *SyncStats) Applied(v []kube.ObjectVersion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied = v
}

// Observe records one sync result.
func (s *SyncStats) Observe(r runner.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.syncs++
	s.lastDuration = r.Duration
	end := r.Start.Add(r.Duration)
	if r.Err != nil {
		s.failures++
		s.lastErr = r.Err.Error()
		s.lastErrTime = end
		return
	}
	s.lastSuccess = end
	s.lastErr = ""
}

// Proto renders the stats.
func (s *SyncStats) Proto(pending bool) *nodev1.SyncStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &nodev1.SyncStatus{LastError: s.lastErr, Syncs: s.syncs, Failures: s.failures, Pending: pending}
	if !s.lastSuccess.IsZero() {
		st.LastSyncTime = timestamppb.New(s.lastSuccess)
	}
	if s.syncs > 0 {
		st.LastSyncDuration = durationpb.New(s.lastDuration)
	}
	if !s.lastErrTime.IsZero() {
		st.LastErrorTime = timestamppb.New(s.lastErrTime)
	}
	for _, v := range s.applied {
		st.Applied = append(st.Applied, &nodev1.ObjectVersion{Kind: v.Kind, ResourceVersion: v.ResourceVersion, Generation: v.Generation})
	}
	return st
}
