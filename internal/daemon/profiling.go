package daemon

import (
	"net/http"
	"net/http/pprof"
)

// registerProfiling serves Go's profiles on mux (--profiling): what an
// operator attaches `go tool pprof` to when a daemon burns CPU or memory.
// Registered on the daemon's own mux, not http.DefaultServeMux, which
// importing net/http/pprof alone would fill for every daemon.
func registerProfiling(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
