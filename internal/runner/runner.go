// Package runner turns a stream of "something changed" triggers into syncs:
// bursts are coalesced, two syncs are at least MinInterval apart, a sync runs
// at least every MaxInterval (a periodic full resync repairs drift made by
// anyone else), and a failed sync is retried with exponential backoff. It is
// the loop of DESIGN.md: informer callbacks only call Trigger; this runner
// alone calls the sync function, so syncs never overlap.
package runner

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/nodenet/nodenet/internal/backoff"
	"k8s.io/utils/clock"
)

// Func applies the whole desired state. full is true when the sync must not
// trust what earlier syncs left behind: the first sync, a periodic resync, a
// retry after a failure, or when TriggerFull asked for it.
type Func func(ctx context.Context, full bool) error

// Result describes one finished sync.
type Result struct {
	Start    time.Time
	Duration time.Duration
	Full     bool
	Err      error
	// Failures counts consecutive failures, this one included (0 on success).
	Failures int
}

// Config tunes a Runner. Zero durations take the defaults of New.
type Config struct {
	// MinInterval is the least time between the starts of two syncs.
	MinInterval time.Duration
	// MaxInterval is the most time between two syncs, triggered or not.
	MaxInterval time.Duration
	// RetryInitial is the wait before the first retry of a failed sync; it
	// doubles with each further failure up to RetryMax.
	RetryInitial time.Duration
	RetryMax     time.Duration
	// Clock is the time source; clock.RealClock{} when nil.
	Clock clock.Clock
	// OnResult, when set, is called after every sync from the runner's goroutine.
	OnResult func(Result)
}

// Runner runs a Func according to its Config.
type Runner struct {
	cfg     Config
	fn      Func
	trigger chan struct{}
	full    atomic.Bool
	pending atomic.Bool
}

// New returns a runner for fn. Defaults: MinInterval 1s, MaxInterval 5m,
// retries from 100ms doubling up to 1m.
func New(fn Func, cfg Config) *Runner {
	if cfg.MinInterval < 0 {
		cfg.MinInterval = 0
	}
	if cfg.MaxInterval <= 0 {
		cfg.MaxInterval = 5 * time.Minute
	}
	if cfg.RetryInitial <= 0 {
		cfg.RetryInitial = 100 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryInitial {
		cfg.RetryMax = max(time.Minute, cfg.RetryInitial)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	r := &Runner{cfg: cfg, fn: fn, trigger: make(chan struct{}, 1)}
	r.pending.Store(true) // the first sync is always owed
	return r
}

// Trigger asks for a sync soon. It never blocks; triggers that arrive before
// the sync starts are served by that one sync.
func (r *Runner) Trigger() {
	r.pending.Store(true)
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// TriggerFull asks for a full sync soon.
func (r *Runner) TriggerFull() {
	r.full.Store(true)
	r.Trigger()
}

// Pending reports whether a change is waiting for a sync.
func (r *Runner) Pending() bool { return r.pending.Load() }

// Backoff is the wait before retry number failures (1 = first retry).
func (c Config) Backoff(failures int) time.Duration {
	return backoff.Exponential(c.RetryInitial, c.RetryMax, failures)
}

// Run syncs until ctx is done. The first sync starts at once.
func (r *Runner) Run(ctx context.Context) {
	var lastStart, lastEnd time.Time
	failures := 0
	full := true
	for {
		if ctx.Err() != nil {
			return
		}
		now := r.cfg.Clock.Now()
		owed := r.pending.Load() || failures > 0
		due := now
		switch {
		case lastStart.IsZero():
			// First sync: at once.
		case owed:
			due = later(due, lastStart.Add(r.cfg.MinInterval))
			if failures > 0 {
				due = later(due, lastEnd.Add(r.cfg.Backoff(failures)))
			}
		default:
			due = lastStart.Add(r.cfg.MaxInterval)
		}
		if wait := due.Sub(now); wait > 0 {
			t := r.cfg.Clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-r.trigger:
				t.Stop()
				continue
			case <-t.C():
			}
		}
		// This sync serves every trigger so far.
		select {
		case <-r.trigger:
		default:
		}
		periodic := !r.pending.Swap(false) && failures == 0
		isFull := full || periodic || failures > 0 || r.full.Swap(false)

		start := r.cfg.Clock.Now()
		err := r.call(ctx, isFull)
		lastStart, lastEnd = start, r.cfg.Clock.Now()
		if err != nil {
			failures++
		} else {
			failures = 0
			full = false
		}
		if r.cfg.OnResult != nil {
			r.cfg.OnResult(Result{Start: start, Duration: lastEnd.Sub(start), Full: isFull, Err: err, Failures: failures})
		}
	}
}

// call runs fn, turning a panic into an error so that one bad object cannot
// take the daemon down; the sync is then retried like any failed one.
func (r *Runner) call(ctx context.Context, full bool) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("sync panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return r.fn(ctx, full)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
