// Package health defines a daemon's health as "the changes it was told about
// have been applied" (kube-proxy's healthz model), not "the process is alive":
// QueuedUpdate marks that a change waits, Updated that a sync applied what was
// queued before it started. The daemon is unhealthy while the oldest change
// still waiting is older than the timeout. The same verdict answers /healthz,
// grpc.health.v1 and `status`.
package health

import (
	"fmt"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// Tracker records queued and applied changes.
type Tracker struct {
	clock   clock.PassiveClock
	timeout time.Duration

	mu          sync.Mutex
	queuedAt    time.Time // oldest change not applied yet; zero when none
	lastUpdated time.Time
}

// NewTracker returns a tracker that turns unhealthy when a change waits longer
// than timeout. clk is clock.RealClock{} outside of tests.
func NewTracker(clk clock.PassiveClock, timeout time.Duration) *Tracker {
	return &Tracker{clock: clk, timeout: timeout}
}

// QueuedUpdate records that a change arrived and waits for a sync.
func (t *Tracker) QueuedUpdate() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.queuedAt.IsZero() {
		t.queuedAt = t.clock.Now()
	}
}

// Updated records a successful sync that started at syncStart: it applied
// every change queued up to then. A change queued while the sync ran stays
// queued for the next one.
func (t *Tracker) Updated(syncStart time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastUpdated = t.clock.Now()
	if !t.queuedAt.After(syncStart) {
		t.queuedAt = time.Time{}
	}
}

// Verdict is the health of the daemon at one instant.
type Verdict struct {
	Healthy bool
	// Ready: a sync has succeeded since the start, so what the daemon
	// programs is in force (firewalld's policies, proxyd's services).
	Ready       bool
	Reason      string
	QueuedAt    time.Time
	LastUpdated time.Time
	Now         time.Time
}

// Check returns the current verdict.
func (t *Tracker) Check() Verdict {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	v := Verdict{Healthy: true, Ready: !t.lastUpdated.IsZero(), QueuedAt: t.queuedAt, LastUpdated: t.lastUpdated, Now: now}
	if !t.queuedAt.IsZero() {
		if waited := now.Sub(t.queuedAt); waited > t.timeout {
			v.Healthy = false
			v.Reason = fmt.Sprintf("a change has waited %v to be applied (timeout %v)", waited.Round(time.Millisecond), t.timeout)
		}
	}
	return v
}
