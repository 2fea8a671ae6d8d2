package metrics

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSyncSeries(t *testing.T) {
	reg := NewRegistry()
	s := NewSync("proxyd")
	reg.MustRegister(s.Collectors()...)

	end := time.Unix(1700000000, 0)
	s.Observe(true, 20*time.Millisecond, nil, end.Add(-time.Second), end)
	s.Observe(false, 5*time.Millisecond, errors.New("no"), time.Time{}, end.Add(time.Second))

	if got := testutil.ToFloat64(s.LastSync); got != 1700000000 {
		t.Errorf("last sync = %v (a failed sync must not move it)", got)
	}
	if got := testutil.ToFloat64(s.Failures); got != 1 {
		t.Errorf("failures = %v", got)
	}
	if n := testutil.CollectAndCount(s.Duration); n != 2 {
		t.Errorf("%d duration series, want full and partial", n)
	}
	names, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range names {
		seen[mf.GetName()] = true
		if mf.GetName() == "proxyd_network_programming_duration_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 1 || h.GetSampleSum() != 1 {
				t.Errorf("programming latency: %d samples, sum %v; want the successful sync's 1s", h.GetSampleCount(), h.GetSampleSum())
			}
		}
	}
	for _, n := range []string{"proxyd_sync_duration_seconds", "proxyd_last_sync_timestamp_seconds", "proxyd_sync_failures_total", "proxyd_changes_pending", "proxyd_network_programming_duration_seconds", "go_goroutines"} {
		if !seen[n] {
			t.Errorf("series %s not gathered", n)
		}
	}
}
