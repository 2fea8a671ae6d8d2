// Package metrics holds the Prometheus series every daemon exports with the
// same names under its own subsystem (routerd_, proxyd_, firewalld_). Series
// are created here and registered explicitly by the daemon's wiring, never in
// constructors of the code that updates them.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Sync are the standard series of a daemon's sync loop.
type Sync struct {
	// Duration of each sync, labelled kind="full" or "partial".
	Duration *prometheus.HistogramVec
	// LastSync is the time of the last successful sync (unix seconds).
	LastSync prometheus.Gauge
	// Failures counts failed syncs.
	Failures prometheus.Counter
	// Pending is 1 while a change waits for a sync.
	Pending prometheus.Gauge
	// ProgrammingLatency is the time from a change arriving to its being
	// applied (the oldest change each successful sync applied).
	ProgrammingLatency prometheus.Histogram
}

// NewSync creates the series for subsystem (the daemon's name).
func NewSync(subsystem string) *Sync {
	buckets := prometheus.ExponentialBuckets(0.001, 2, 16) // 1ms .. ~33s
	return &Sync{
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "sync_duration_seconds",
			Help: "Time one sync took to compute and apply the desired state.", Buckets: buckets,
		}, []string{"kind"}),
		LastSync: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: subsystem, Name: "last_sync_timestamp_seconds",
			Help: "Unix time of the last successful sync.",
		}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{
			Subsystem: subsystem, Name: "sync_failures_total",
			Help: "Syncs that failed (and were retried).",
		}),
		Pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: subsystem, Name: "changes_pending",
			Help: "1 while a change waits to be applied, else 0.",
		}),
		ProgrammingLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: subsystem, Name: "network_programming_duration_seconds",
			Help: "Time from a change arriving to its being applied.", Buckets: buckets,
		}),
	}
}

// Collectors lists the series for registration.
func (s *Sync) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.Duration, s.LastSync, s.Failures, s.Pending, s.ProgrammingLatency}
}

// Observe records one sync. queuedAt is when the oldest change it applied
// arrived (zero when it applied none); end is when it finished.
func (s *Sync) Observe(full bool, d time.Duration, err error, queuedAt, end time.Time) {
	kind := "partial"
	if full {
		kind = "full"
	}
	s.Duration.WithLabelValues(kind).Observe(d.Seconds())
	if err != nil {
		s.Failures.Inc()
		return
	}
	s.LastSync.Set(float64(end.UnixNano()) / 1e9)
	if !queuedAt.IsZero() {
		s.ProgrammingLatency.Observe(end.Sub(queuedAt).Seconds())
	}
}
