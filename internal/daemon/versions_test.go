package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func service(rv string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: rv}}
}

// scripted is a controller whose syncs run the steps given, one per sync
// (the last one repeats). Each step sees what status reported as applied
// when the sync began, and the Deps, as an informer handler would.
type scripted struct {
	deps   Deps
	status func() []*nodev1.ObjectVersion
	steps  []func(Deps) error

	mu   sync.Mutex
	seen []string // applied, rendered, at the start of each sync
}

func (s *scripted) Start(context.Context) error { return nil }
func (s *scripted) Counts() map[string]uint64   { return nil }
func (s *scripted) Sync(context.Context, bool) error {
	s.mu.Lock()
	n := len(s.seen)
	s.seen = append(s.seen, render(s.status()))
	s.mu.Unlock()
	return s.steps[min(n, len(s.steps)-1)](s.deps)
}

func (s *scripted) syncs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

func render(vs []*nodev1.ObjectVersion) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%s@%s(%d)", v.GetKind(), v.GetResourceVersion(), v.GetGeneration()))
	}
	return strings.Join(parts, ",")
}

// The versions are snapshot before a sync starts, so an event that arrives
// during the sync is not claimed by it; a failed sync stores nothing.
func TestAppliedVersionsCoverWhatTheSyncRead(t *testing.T) {
	runDir := shortRunDir(t)
	ctrl := &scripted{steps: []func(Deps) error{
		func(deps Deps) error {
			// An event while the first sync runs, recorded and
			// triggered as kube.OnChangeTracked does.
			deps.Versions.Observe("services", service("6"))
			deps.Trigger()
			return nil
		},
		func(Deps) error { return errors.New("netlink: operation not permitted") },
		func(Deps) error { return nil },
	}}
	spec := Spec{Name: "proxyd", NewController: func(deps Deps) (Controller, error) {
		if deps.Versions == nil {
			t.Error("the skeleton handed the controller no Versions")
		}
		// The informers' initial list, delivered before the first sync.
		deps.Versions.Observe("services", service("5"))
		deps.Versions.Observe("nodes", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", ResourceVersion: "2"}})
		ctrl.deps = deps
		return ctrl, nil
	}}
	cfg := testConfig("proxyd", runDir)
	cfg.Peers = nil
	d, err := New(spec, cfg, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatal(err)
	}
	ctrl.status = func() []*nodev1.ObjectVersion { return d.stats.Proto(false).GetApplied() }
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopDaemon(t, d) })

	const all = "nodes@2(1),services@6(2)"
	eventually(t, "the retried sync to cover the event of the first", func() bool { return render(ctrl.status()) == all })
	want := []string{
		"",                         // before the first sync: nothing applied
		"nodes@2(1),services@5(1)", // the first covered the initial list, not the event during it
		"nodes@2(1),services@5(1)", // the second failed: nothing stored
		all,
	}
	if got := ctrl.syncs(); len(got) < 3 || fmt.Sprint(got[:3]) != fmt.Sprint(want[:3]) {
		t.Fatalf("applied at the start of each sync: %q, want %q", got, want)
	}

	// status -o json carries them, as protojson renders them.
	res := runMain(Spec{Name: "proxyd"}, "status", "-o", "json", "--run-dir", runDir, "--daemons", "proxyd")
	var doc struct {
		Daemons []struct {
			Status struct {
				Sync struct {
					Applied []struct {
						Kind            string `json:"kind"`
						ResourceVersion string `json:"resourceVersion"`
						Generation      string `json:"generation"`
					} `json:"applied"`
				} `json:"sync"`
			} `json:"status"`
		} `json:"daemons"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil || len(doc.Daemons) != 1 {
		t.Fatalf("status -o json: %v\n%s", err, res.stdout)
	}
	a := doc.Daemons[0].Status.Sync.Applied
	if len(a) != 2 || a[1].Kind != "services" || a[1].ResourceVersion != "6" || a[1].Generation != "2" {
		t.Fatalf("applied in status -o json: %+v", a)
	}
}
