package health

import (
	"encoding/json"
	"net/http"
	"time"
)

// Register serves /healthz (the tracker's verdict: 200 or 503), /readyz
// (200 once a sync succeeded and while healthy) and /livez (200 while the
// process serves HTTP) on mux.
func Register(mux *http.ServeMux, t *Tracker) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		v := t.Check()
		body := struct {
			Healthy     bool   `json:"healthy"`
			Reason      string `json:"reason,omitempty"`
			LastUpdated string `json:"lastUpdated,omitempty"`
			QueuedAt    string `json:"queuedAt,omitempty"`
			CurrentTime string `json:"currentTime"`
		}{Healthy: v.Healthy, Reason: v.Reason, LastUpdated: stamp(v.LastUpdated), QueuedAt: stamp(v.QueuedAt), CurrentTime: stamp(v.Now)}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !v.Healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch v := t.Check(); {
		case !v.Ready:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("no sync has succeeded yet\n"))
		case !v.Healthy:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(v.Reason + "\n"))
		default:
			_, _ = w.Write([]byte("ok\n"))
		}
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
