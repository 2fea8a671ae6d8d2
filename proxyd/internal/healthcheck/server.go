// Package healthcheck serves the healthCheckNodePort of every LoadBalancer
// Service with externalTrafficPolicy Local, the way kube-proxy does: the
// cloud load balancer probes each node and sends traffic only to the nodes
// that answer 200, i.e. the ones with a local endpoint.
package healthcheck

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nodenet/nodenet/proxyd/internal/model"
	"go.uber.org/zap"
)

// Listen opens a listener for a health check port; tests replace it.
type Listen func(port uint16) (net.Listener, error)

// ListenAll listens on every address of the node (the load balancer probes
// the node address it knows).
func ListenAll(port uint16) (net.Listener, error) {
	return net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(int(port))))
}

// Servers runs one HTTP server per health check port.
type Servers struct {
	log    *zap.Logger
	listen Listen
	// healthy reports whether proxyd itself is healthy (kube-proxy answers
	// 503 when its own rules are stale).
	healthy func() bool

	mu      sync.Mutex
	servers map[uint16]*server
}

type server struct {
	srv *http.Server
	mu  sync.Mutex
	hc  model.HealthCheck
}

// New returns an empty set of servers.
func New(log *zap.Logger, listen Listen, healthy func() bool) *Servers {
	return &Servers{log: log.Named("healthcheck"), listen: listen, healthy: healthy, servers: map[uint16]*server{}}
}

// Sync makes the running servers match checks: new ports are opened, gone
// ones closed, counts updated. A port that cannot be opened is reported and
// the others still served.
func (s *Servers) Sync(checks []model.HealthCheck) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[uint16]model.HealthCheck, len(checks))
	for _, c := range checks {
		want[c.Port] = c
	}
	for port, srv := range s.servers {
		if _, ok := want[port]; !ok {
			_ = srv.srv.Close()
			delete(s.servers, port)
		}
	}
	var errs []error
	for port, c := range want {
		if srv, ok := s.servers[port]; ok {
			srv.mu.Lock()
			srv.hc = c
			srv.mu.Unlock()
			continue
		}
		l, err := s.listen(port)
		if err != nil {
			errs = append(errs, fmt.Errorf("health check port %d of %s: %w", port, c.Service, err))
			continue
		}
		srv := &server{hc: c}
		srv.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { s.answer(w, srv) }), ReadHeaderTimeout: 5 * time.Second}
		s.servers[port] = srv
		go func() {
			if err := srv.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Warn("health check server failed", zap.Uint16("port", port), zap.Error(err))
			}
		}()
	}
	return errors.Join(errs...)
}

// answer writes kube-proxy's answer: 200 with the number of local endpoints,
// 503 when there are none (or proxyd is unhealthy).
func (s *Servers) answer(w http.ResponseWriter, srv *server) {
	srv.mu.Lock()
	hc := srv.hc
	srv.mu.Unlock()
	healthy := s.healthy()
	type service struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	}
	body := struct {
		Service             service `json:"service"`
		LocalEndpoints      int     `json:"localEndpoints"`
		ServiceProxyHealthy bool    `json:"serviceProxyHealthy"`
	}{service{hc.Service.Namespace, hc.Service.Name}, hc.LocalEndpoints, healthy}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(hc.LocalEndpoints))
	if hc.LocalEndpoints == 0 || !healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// Close stops every server.
func (s *Servers) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for port, srv := range s.servers {
		errs = append(errs, srv.srv.Shutdown(ctx))
		delete(s.servers, port)
	}
	return errors.Join(errs...)
}

// Ports returns the ports served, for status.
func (s *Servers) Ports() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.servers)
}
