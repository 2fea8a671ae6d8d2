package health

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testingclock "k8s.io/utils/clock/testing"
)

func TestTrackerVerdicts(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(1000, 0))
	tr := NewTracker(clk, time.Minute)
	if !tr.Check().Healthy {
		t.Fatal("unhealthy with nothing queued")
	}

	tr.QueuedUpdate()
	queued := clk.Now()
	clk.Step(time.Minute)
	if !tr.Check().Healthy {
		t.Fatal("unhealthy at exactly the timeout")
	}
	tr.QueuedUpdate() // a later change does not hide the older one
	clk.Step(time.Millisecond)
	v := tr.Check()
	if v.Healthy || v.Reason == "" || !v.QueuedAt.Equal(queued) {
		t.Fatalf("verdict %+v, want unhealthy with a reason, queued at %v", v, queued)
	}

	// A sync that started before the change does not clear it.
	tr.Updated(queued.Add(-time.Second))
	if tr.Check().Healthy {
		t.Fatal("a sync that started before the change cleared it")
	}
	tr.Updated(clk.Now())
	if v := tr.Check(); !v.Healthy || !v.LastUpdated.Equal(clk.Now()) {
		t.Fatalf("after the sync: %+v", v)
	}
}

func TestHTTPHandlers(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(1000, 0))
	tr := NewTracker(clk, time.Second)
	mux := http.NewServeMux()
	Register(mux, tr)

	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec
	}
	if rec := get("/healthz"); rec.Code != http.StatusOK {
		t.Fatalf("/healthz = %d", rec.Code)
	}
	tr.QueuedUpdate()
	clk.Step(2 * time.Second)
	rec := get("/healthz")
	var body struct {
		Healthy bool   `json:"healthy"`
		Reason  string `json:"reason"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusServiceUnavailable || body.Healthy || body.Reason == "" {
		t.Fatalf("/healthz = %d %s", rec.Code, rec.Body)
	}
	if rec := get("/livez"); rec.Code != http.StatusOK {
		t.Fatalf("/livez = %d while unhealthy: liveness is not readiness", rec.Code)
	}
}

func TestReadyzAfterTheFirstSync(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(1000, 0))
	tr := NewTracker(clk, time.Second)
	mux := http.NewServeMux()
	Register(mux, tr)
	code := func() int {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code
	}
	if c := code(); c != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d before any sync", c)
	}
	tr.Updated(clk.Now())
	if c := code(); c != http.StatusOK {
		t.Fatalf("/readyz = %d after a sync", c)
	}
	tr.QueuedUpdate()
	clk.Step(2 * time.Second)
	if c := code(); c != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d while a change is overdue", c)
	}
}

func TestGRPCCheck(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(1000, 0))
	tr := NewTracker(clk, time.Second)
	g := NewGRPC(tr, "proxyd")
	check := func(service string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		resp, err := g.Check(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetStatus()
	}
	if check("") != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatal("serving before any sync: nothing the daemon programs is in force yet")
	}
	tr.Updated(clk.Now())
	if check("") != healthpb.HealthCheckResponse_SERVING || check("proxyd") != healthpb.HealthCheckResponse_SERVING {
		t.Fatal("not serving while healthy")
	}
	tr.QueuedUpdate()
	clk.Step(2 * time.Second)
	if check("") != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatal("serving while a change is overdue")
	}
	if _, err := g.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "nope"}); err == nil {
		t.Fatal("unknown service answered")
	}
}
