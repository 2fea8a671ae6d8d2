package runner

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

// harness runs a Runner inside a synctest bubble with a fake clock: the test
// moves the clock with step and synctest.Wait returns once the runner's
// goroutine is blocked again, so every assertion sees a settled runner.
type harness struct {
	t       *testing.T
	clock   *testingclock.FakeClock
	r       *Runner
	mu      sync.Mutex
	results []Result
	fail    int // the next fail syncs return an error
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, clock: testingclock.NewFakeClock(time.Unix(1_000_000, 0))}
	cfg.Clock = h.clock
	cfg.OnResult = func(res Result) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.results = append(h.results, res)
	}
	h.r = New(func(context.Context, bool) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.fail > 0 {
			h.fail--
			return errors.New("kernel said no")
		}
		return nil
	}, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	synctest.Wait()
	return h
}

func (h *harness) step(d time.Duration) {
	h.clock.Step(d)
	synctest.Wait()
}

func (h *harness) syncs() []Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Result(nil), h.results...)
}

func (h *harness) wantSyncs(n int) []Result {
	h.t.Helper()
	got := h.syncs()
	if len(got) != n {
		h.t.Fatalf("%d syncs, want %d: %+v", len(got), n, got)
	}
	return got
}

func TestFirstSyncIsImmediateAndFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: time.Minute})
		got := h.wantSyncs(1)
		if !got[0].Full || got[0].Err != nil {
			t.Fatalf("first sync %+v, want full and successful", got[0])
		}
		if h.r.Pending() {
			t.Fatal("pending after the first sync")
		}
	})
}

func TestBurstCoalescesIntoOneSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: time.Minute})
		h.wantSyncs(1)
		h.step(100 * time.Millisecond)
		for range 1000 {
			h.r.Trigger()
		}
		synctest.Wait()
		// Still inside MinInterval of the first sync: nothing runs yet.
		h.wantSyncs(1)
		if !h.r.Pending() {
			t.Fatal("burst not recorded as pending")
		}
		h.step(899 * time.Millisecond)
		h.wantSyncs(1)
		h.step(time.Millisecond)
		got := h.wantSyncs(2)
		if got[1].Full {
			t.Fatalf("triggered sync %+v should be partial", got[1])
		}
		if want := h.clock.Now(); !got[1].Start.Equal(want) {
			t.Fatalf("coalesced sync started at %v, want %v", got[1].Start, want)
		}
		// Nothing more is owed: the next sync is the periodic one.
		h.step(30 * time.Second)
		h.wantSyncs(2)
	})
}

func TestTriggerAfterQuietPeriodRunsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: time.Minute})
		h.step(5 * time.Second)
		h.r.Trigger()
		synctest.Wait()
		h.wantSyncs(2)
	})
}

func TestMaxIntervalForcesFullResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: time.Minute})
		h.step(59 * time.Second)
		h.wantSyncs(1)
		h.step(time.Second)
		got := h.wantSyncs(2)
		if !got[1].Full {
			t.Fatalf("periodic sync %+v should be full", got[1])
		}
		h.step(time.Minute)
		h.wantSyncs(3)
	})
}

func TestFailedSyncRetriesWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{MinInterval: 10 * time.Millisecond, MaxInterval: time.Hour,
			RetryInitial: 100 * time.Millisecond, RetryMax: 400 * time.Millisecond})
		h.wantSyncs(1)

		h.mu.Lock()
		h.fail = 4
		h.mu.Unlock()
		h.step(time.Second)
		h.r.Trigger()
		synctest.Wait()
		h.wantSyncs(2) // fails (1)

		// Retries wait 100ms, 200ms, 400ms, 400ms after each failure; a
		// trigger in between does not cut the wait short.
		for i, wait := range []time.Duration{100, 200, 400, 400} {
			wait *= time.Millisecond
			h.r.Trigger()
			h.step(wait - time.Millisecond)
			h.wantSyncs(2 + i)
			h.step(time.Millisecond)
			got := h.wantSyncs(3 + i)
			last := got[len(got)-1]
			if !last.Full {
				t.Fatalf("retry %d not full: %+v", i, last)
			}
			if i < 3 && (last.Err == nil || last.Failures != i+2) {
				t.Fatalf("retry %d: %+v, want failure number %d", i, last, i+2)
			}
		}
		last := h.syncs()[5]
		if last.Err != nil || last.Failures != 0 {
			t.Fatalf("the retry after the failures ended should succeed: %+v", last)
		}
		// Back to normal: nothing owed until the next trigger.
		h.step(10 * time.Minute)
		h.wantSyncs(6)
	})
}

func TestPanicInSyncIsAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var results []Result
		calls := 0
		r := New(func(context.Context, bool) error {
			calls++
			if calls == 1 {
				panic("a bug in the sync function")
			}
			return nil
		}, Config{
			RetryInitial: time.Second,
			Clock:        testingclock.NewFakeClock(time.Unix(0, 0)),
			OnResult: func(res Result) {
				mu.Lock()
				defer mu.Unlock()
				results = append(results, res)
			},
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.Run(ctx)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(results) != 1 || results[0].Err == nil || !strings.Contains(results[0].Err.Error(), "panicked") {
			t.Fatalf("results = %+v, want one failed sync reporting the panic", results)
		}
	})
}

func TestTriggerFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, Config{MinInterval: time.Second, MaxInterval: time.Hour})
		h.step(time.Second)
		h.r.TriggerFull()
		synctest.Wait()
		if got := h.wantSyncs(2); !got[1].Full {
			t.Fatalf("TriggerFull gave %+v", got[1])
		}
	})
}
