package controller

import (
	"github.com/nodenet/nodenet/proxyd/internal/desired"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// EventRecorder is the part of client-go's record.EventRecorder proxyd uses.
type EventRecorder interface {
	Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any)
}

// problemReporter tells about bad input once, when it appears: a log line,
// a Warning event on the object, a counter. Every sync recomputes the same
// problems; repeating them would flood the log and the API.
type problemReporter struct {
	log     *zap.Logger
	events  EventRecorder
	seen    map[desired.Problem]bool
	total   *prometheus.CounterVec
	current prometheus.Gauge
}

func newProblemReporter(log *zap.Logger, events EventRecorder, reg prometheus.Registerer) *problemReporter {
	p := &problemReporter{
		log:    log.Named("problems"),
		events: events,
		seen:   map[desired.Problem]bool{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "proxyd", Name: "invalid_objects_total",
			Help: "Problems found in Services and EndpointSlices (each counted once, when it appears); the object part is skipped.",
		}, []string{"kind", "reason"}),
		current: prometheus.NewGauge(prometheus.GaugeOpts{
			Subsystem: "proxyd", Name: "invalid_objects",
			Help: "Problems in Services and EndpointSlices in the last sync.",
		}),
	}
	if reg != nil {
		reg.MustRegister(p.total, p.current)
	}
	return p
}

// report logs, records and counts the problems not reported before; lookup
// finds the object to put an event on.
func (p *problemReporter) report(problems []desired.Problem, lookup func(desired.Problem) runtime.Object) {
	now := make(map[desired.Problem]bool, len(problems))
	for _, pr := range problems {
		now[pr] = true
		if p.seen[pr] {
			continue
		}
		p.log.Warn("skipping bad input", zap.String("kind", pr.Kind), zap.Stringer("object", pr.Object),
			zap.String("reason", pr.Reason), zap.String("message", pr.Message))
		p.total.WithLabelValues(pr.Kind, pr.Reason).Inc()
		if p.events != nil {
			if obj := lookup(pr); obj != nil {
				p.events.Eventf(obj, corev1.EventTypeWarning, pr.Reason, "%s", pr.Message)
			}
		}
	}
	p.seen = now
	p.current.Set(float64(len(now)))
}

// count is the number of problems of the last report.
func (p *problemReporter) count() int { return len(p.seen) }
