package problems

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

type recorder struct{ events []string }

func (r *recorder) Eventf(obj runtime.Object, typ, reason, format string, args ...any) {
	m := obj.(metav1.Object)
	r.events = append(r.events, fmt.Sprintf("%s %s/%s %s: %s", typ, m.GetNamespace(), m.GetName(), reason, fmt.Sprintf(format, args...)))
}

func TestReportsOnceWhenAProblemAppears(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	r := New("testd", zap.NewNop(), rec, reg)
	lookup := func(p Problem) runtime.Object {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}
	}
	bad := Problem{Kind: "Pod", Namespace: "x", Name: "a", Reason: "InvalidPodIP", Message: "nope"}
	r.Report([]Problem{bad}, lookup)
	r.Report([]Problem{bad}, lookup)
	if len(rec.events) != 1 || rec.events[0] != "Warning x/a InvalidPodIP: nope" {
		t.Fatalf("events: %q", rec.events)
	}
	if got := testutil.ToFloat64(r.total.WithLabelValues("Pod", "InvalidPodIP")); got != 1 {
		t.Errorf("total: %v, want 1", got)
	}
	r.Report(nil, lookup)
	if r.Count() != 0 || testutil.ToFloat64(r.current) != 0 {
		t.Error("a fixed problem is still counted")
	}
	r.Report([]Problem{bad}, lookup) // it came back: new again
	if len(rec.events) != 2 {
		t.Errorf("a problem that came back was not reported: %q", rec.events)
	}
}
