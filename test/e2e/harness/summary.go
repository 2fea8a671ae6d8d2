package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Results of a summary's rows.
const (
	Pass   = "PASS"
	Fail   = "FAIL"
	Skip   = "SKIP"
	NotRun = "NOT RUN"
)

// Summary is the table a guest test prints at its end: each scenario, its
// result and how long it took.
type Summary struct {
	mu   sync.Mutex
	rows []summaryRow
}

type summaryRow struct {
	name, result string
	took         time.Duration
}

// NewSummary makes the summary of t with a row per planned scenario (NOT
// RUN until recorded). When t ends, the table goes to t's log and, when
// running in the VM, to Out's SummaryFile, which RunGuest prints.
func NewSummary(t *testing.T, scenarios ...string) *Summary {
	s := &Summary{}
	for _, n := range scenarios {
		s.rows = append(s.rows, summaryRow{name: n, result: NotRun})
	}
	t.Cleanup(func() {
		table := s.String()
		t.Logf("summary:\n%s", table)
		if dir := os.Getenv(EnvOut); dir != "" {
			if err := os.WriteFile(filepath.Join(dir, SummaryFile), []byte(table), 0o644); err != nil {
				t.Errorf("summary: %v", err)
			}
		}
	})
	return s
}

// Record sets a scenario's result and duration (a new row for a name not
// planned).
func (s *Summary) Record(name, result string, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.rows {
		if s.rows[i].name == name {
			s.rows[i].result, s.rows[i].took = result, took
			return
		}
	}
	s.rows = append(s.rows, summaryRow{name: name, result: result, took: took})
}

// Run runs f as t's subtest name, records its result and duration, and
// reports whether it passed.
func (s *Summary) Run(t *testing.T, name string, f func(t *testing.T)) bool {
	t.Helper()
	begin := time.Now()
	result := Fail
	ok := t.Run(name, func(t *testing.T) {
		defer func() {
			switch {
			case t.Failed():
				result = Fail
			case t.Skipped():
				result = Skip
			default:
				result = Pass
			}
		}()
		f(t)
	})
	s.Record(name, result, time.Since(begin))
	return ok
}

// Step times a part of a test that is not a subtest (setup): call the
// returned function when it ends, with t (its result is t's so far).
func (s *Summary) Step(name string) func(t testing.TB) {
	begin := time.Now()
	return func(t testing.TB) {
		result := Pass
		if t.Failed() {
			result = Fail
		}
		s.Record(name, result, time.Since(begin))
	}
}

// String is the table.
func (s *Summary) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	width := len("scenario")
	for _, r := range s.rows {
		width = max(width, len(r.name))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s  %-7s  %s\n", width, "scenario", "result", "duration")
	var total time.Duration
	for _, r := range s.rows {
		took := "-"
		if r.result != NotRun {
			took = r.took.Round(time.Millisecond).String()
			total += r.took
		}
		fmt.Fprintf(&b, "%-*s  %-7s  %s\n", width, r.name, r.result, took)
	}
	fmt.Fprintf(&b, "%-*s  %-7s  %s\n", width, "total", "", total.Round(time.Millisecond))
	return b.String()
}
