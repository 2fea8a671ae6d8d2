package healthcheck

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/nodenet/nodenet/proxyd/internal/model"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/types"
)

// loopback listens on 127.0.0.1 with a kernel-chosen port, and remembers
// which health check port asked for it.
type loopback struct{ addrs map[uint16]string }

func (l *loopback) listen(port uint16) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err == nil {
		l.addrs[port] = ln.Addr().String()
	}
	return ln, err
}

func probe(t *testing.T, addr string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return resp.StatusCode, body
}

func TestAnswersLikeKubeProxy(t *testing.T) {
	lb := &loopback{addrs: map[uint16]string{}}
	var healthy atomic.Bool
	healthy.Store(true)
	s := New(zap.NewNop(), lb.listen, healthy.Load)
	defer func() { _ = s.Close(context.Background()) }()
	web := types.NamespacedName{Namespace: "shop", Name: "web"}
	if err := s.Sync([]model.HealthCheck{{Service: web, Port: 31000, LocalEndpoints: 2}, {Service: types.NamespacedName{Namespace: "shop", Name: "db"}, Port: 31001}}); err != nil {
		t.Fatal(err)
	}
	code, body := probe(t, lb.addrs[31000])
	if code != http.StatusOK || body["localEndpoints"] != float64(2) || body["service"].(map[string]any)["name"] != "web" {
		t.Fatalf("web: %d %v", code, body)
	}
	if code, _ := probe(t, lb.addrs[31001]); code != http.StatusServiceUnavailable {
		t.Fatalf("db without local endpoints: %d", code)
	}

	// Counts change in place; the listener stays.
	addr := lb.addrs[31000]
	if err := s.Sync([]model.HealthCheck{{Service: web, Port: 31000}}); err != nil {
		t.Fatal(err)
	}
	if lb.addrs[31000] != addr {
		t.Fatal("listener re-opened for a count change")
	}
	if code, body := probe(t, addr); code != http.StatusServiceUnavailable || body["localEndpoints"] != float64(0) {
		t.Fatalf("after the endpoint left: %d %v", code, body)
	}
	if s.Ports() != 1 {
		t.Fatalf("%d ports served, want 1 (31001 closed)", s.Ports())
	}
	if _, err := http.Get("http://" + lb.addrs[31001]); err == nil {
		t.Fatal("closed health check port still answers")
	}

	// An unhealthy proxy fails every check, as kube-proxy does.
	if err := s.Sync([]model.HealthCheck{{Service: web, Port: 31000, LocalEndpoints: 1}}); err != nil {
		t.Fatal(err)
	}
	healthy.Store(false)
	if code, body := probe(t, addr); code != http.StatusServiceUnavailable || body["serviceProxyHealthy"] != false {
		t.Fatalf("unhealthy proxy: %d %v", code, body)
	}
}

func TestPortInUseIsReportedOthersServed(t *testing.T) {
	lb := &loopback{addrs: map[uint16]string{}}
	busy := func(port uint16) (net.Listener, error) {
		if port == 31005 {
			return nil, &net.OpError{Op: "listen", Err: errAddrInUse{}}
		}
		return lb.listen(port)
	}
	s := New(zap.NewNop(), busy, func() bool { return true })
	defer func() { _ = s.Close(context.Background()) }()
	err := s.Sync([]model.HealthCheck{{Port: 31005, LocalEndpoints: 1}, {Port: 31006, LocalEndpoints: 1}})
	if err == nil {
		t.Fatal("busy port not reported")
	}
	if code, _ := probe(t, lb.addrs[31006]); code != http.StatusOK {
		t.Fatalf("the other port: %d", code)
	}
}

type errAddrInUse struct{}

func (errAddrInUse) Error() string { return "address already in use" }
