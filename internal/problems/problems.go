// Package problems tells about bad input found in API objects once, when it
// appears: a log line, a Warning event on the object and a counter. Every
// sync recomputes the same problems; repeating them would flood the log and
// the API server.
package problems

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Problem is one thing wrong with one object; the part it names was skipped.
type Problem struct {
	Kind, Namespace, Name string
	// Reason is a CamelCase word, the event's reason.
	Reason  string
	Message string
}

// EventRecorder is the part of client-go's record.EventRecorder used here.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// Reporter reports problems; not safe for concurrent use (the sync loop
// owns it).
type Reporter struct {
	log     *zap.Logger
	events  EventRecorder
	seen    map[Problem]bool
	total   *prometheus.CounterVec
	current prometheus.Gauge
}

// New returns a reporter whose metrics are <daemon>_invalid_objects_total
// and <daemon>_invalid_objects; events may be nil (log and count only).
func New(daemon string, log *zap.Logger, events EventRecorder, reg prometheus.Registerer) *Reporter {
	r := &Reporter{
		log:    log.Named("problems"),
		events: events,
		seen:   map[Problem]bool{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: daemon, Name: "invalid_objects_total",
			Help: "Problems found in API objects (each counted once, when it appears); the broken part is skipped.",
		}, []string{"kind", "reason"}),
		current: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: daemon, Name: "invalid_objects",
			Help: "Problems in API objects in the last sync.",
		}),
	}
	if reg != nil {
		reg.MustRegister(r.total, r.current)
	}
	return r
}

// Report logs, records and counts the problems not reported before; lookup
// finds the object to put an event on (nil: none).
func (r *Reporter) Report(ps []Problem, lookup func(Problem) runtime.Object) {
	now := make(map[Problem]bool, len(ps))
	for _, p := range ps {
		now[p] = true
		if r.seen[p] {
			continue
		}
		r.log.Warn("skipping bad input", zap.String("kind", p.Kind), zap.String("namespace", p.Namespace),
			zap.String("name", p.Name), zap.String("reason", p.Reason), zap.String("message", p.Message))
		r.total.WithLabelValues(p.Kind, p.Reason).Inc()
		if r.events != nil && lookup != nil {
			if obj := lookup(p); obj != nil {
				r.events.Eventf(obj, corev1.EventTypeWarning, p.Reason, "%s", p.Message)
			}
		}
	}
	r.seen = now
	r.current.Set(float64(len(now)))
}

// Count is the number of problems of the last report.
func (r *Reporter) Count() int { return len(r.seen) }
