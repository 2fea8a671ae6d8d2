package statusapi

import (
	"errors"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/kube"
	"github.com/nodenet/nodenet/internal/runner"
)

func TestSyncStats(t *testing.T) {
	var s SyncStats
	if st := s.Proto(true); st.GetLastSyncTime() != nil || st.GetLastSyncDuration() != nil || !st.GetPending() {
		t.Fatalf("before any sync: %v", st)
	}
	t0 := time.Unix(1000, 0)
	s.Observe(runner.Result{Start: t0, Duration: time.Second, Err: errors.New("EPERM")})
	st := s.Proto(false)
	if st.GetLastError() != "EPERM" || !st.GetLastErrorTime().AsTime().Equal(t0.Add(time.Second)) || st.GetLastSyncTime() != nil || st.GetFailures() != 1 {
		t.Fatalf("after a failure: %v", st)
	}
	s.Observe(runner.Result{Start: t0.Add(time.Minute), Duration: 2 * time.Millisecond})
	st = s.Proto(false)
	if st.GetLastError() != "" || !st.GetLastSyncTime().AsTime().Equal(t0.Add(time.Minute+2*time.Millisecond)) ||
		st.GetLastSyncDuration().AsDuration() != 2*time.Millisecond || st.GetSyncs() != 2 || st.GetFailures() != 1 {
		t.Fatalf("after a success: %v", st)
	}
	if st.GetApplied() != nil {
		t.Fatalf("applied before any was recorded: %v", st.GetApplied())
	}
	s.Applied([]kube.ObjectVersion{{Kind: "endpointslices", ResourceVersion: "12", Generation: 3}, {Kind: "services", Generation: 1}})
	got := s.Proto(false).GetApplied()
	if len(got) != 2 || got[0].GetKind() != "endpointslices" || got[0].GetResourceVersion() != "12" || got[0].GetGeneration() != 3 ||
		got[1].GetKind() != "services" || got[1].GetResourceVersion() != "" {
		t.Fatalf("applied %v", got)
	}
}
