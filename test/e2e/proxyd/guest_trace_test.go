//go:build e2eguest

package proxyd

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testTrace checks `proxyd trace` both ways against real traffic: for each
// case, connections go through IPVS and what they did (which backends
// answered, the source each saw, or that nothing answered) must be what
// the trace of the same packet says (verdict, the selected endpoints, the
// masquerade of each).
func (e *env) testTrace(t *testing.T) {
	world := e.topo.World()
	for _, tc := range []struct {
		name string
		from *netns.NetNS
		src  netip.Addr
		to   netip.AddrPort
	}{
		// Round robin over web-1 and web-2 on node1; the pod keeps its
		// address.
		{"clusterip-from-pod", e.client.NetNS, e.client.IP, e.vip("web")},
		// externalTrafficPolicy Cluster: masqueraded to node0.
		{"nodeport-cluster-from-outside", world.NetNS, world.IP, e.nodePort("web-np")},
		// externalTrafficPolicy Local: local-1 only, the client's address.
		{"nodeport-local-from-outside", world.NetNS, world.IP, e.nodePort("local-np")},
		// Hairpin: masqueraded to the bridge for local-1 only.
		{"clusterip-hairpin", e.client.NetNS, e.client.IP, e.vip("local-np")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := e.trace(t, tc.src, tc.to)
			if tr.GetVerdict() != nodev1.TraceVerdict_TRACE_VERDICT_FORWARD {
				t.Fatalf("traffic from %s to %s is answered; the trace says %s (%v)", tc.src, tc.to, tr.GetVerdict(), tr.GetReasons())
			}
			// What the traffic did: each backend that answered, and the
			// source it saw (six connections: round robin reaches every
			// selected endpoint).
			seen := map[netip.Addr]netip.Addr{}
			for range 6 {
				a := e.dial(t, tc.from, tc.to)
				seen[e.pods[a.Name].IP] = a.Source.Addr()
			}
			var selected []string
			for _, ep := range tr.GetEndpoints() {
				if !ep.GetSelected() {
					continue
				}
				selected = append(selected, ep.GetAddress())
				ap, err := netip.ParseAddrPort(ep.GetAddress())
				if err != nil {
					t.Fatalf("trace endpoint %q: %v", ep.GetAddress(), err)
				}
				saw, ok := seen[ap.Addr()]
				if !ok {
					t.Errorf("the trace selects %s, which no connection reached (reached: %v)", ap, seen)
					continue
				}
				if masq := saw != tc.src; masq != ep.GetMasquerade() {
					t.Errorf("%s saw source %s (masqueraded: %v); the trace says masquerade=%v (%v)", ap, saw, masq, ep.GetMasquerade(), tr.GetMasquerade())
				}
			}
			for backend := range seen {
				if !slices.ContainsFunc(selected, func(s string) bool { return strings.HasPrefix(s, backend.String()+":") }) {
					t.Errorf("%s answered, but the trace does not select it (selected: %v)", backend, selected)
				}
			}
			t.Logf("trace and traffic agree: %d endpoint(s) selected and reached, sources %v", len(selected), seen)
		})
	}

	// A Service without endpoints: IPVS has the virtual service and no real
	// server, and answers with a refusal.
	t.Run("no-endpoints", func(t *testing.T) {
		svc, err := e.createService(ctxFor(t, opTimeout), "empty", "nobody", func(*corev1.ServiceSpec) {})
		if err != nil {
			t.Fatal(err)
		}
		to := netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), servicePort)
		tr := e.waitTrace(t, e.client.IP, to, nodev1.TraceVerdict_TRACE_VERDICT_REJECT)
		if !tr.GetService().GetProgrammed() || len(tr.GetEndpoints()) != 0 {
			t.Errorf("the trace of %s: programmed=%v, endpoints %v", to, tr.GetService().GetProgrammed(), tr.GetEndpoints())
		}
		if a, err := e.client.NetNS.DialTCP(ctxFor(t, opTimeout), to); err == nil {
			t.Errorf("%s answered %s, the trace says REJECT", to, a)
		} else if !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: %v, want a refusal (IPVS without a real server)", to, err)
		}
		// Deleted, and waited out: the later steps count proxyd's writes.
		if err := e.admin.CoreV1().Services(namespace).Delete(ctxFor(t, opTimeout), svc.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitTrace(t, e.client.IP, to, nodev1.TraceVerdict_TRACE_VERDICT_NOT_SERVED)
	})

	// loadBalancerSourceRanges: the world allowed, then not.
	t.Run("loadbalancer-source-ranges", func(t *testing.T) { e.testTraceSourceRanges(t, world) })

	// A port no Service has: not served by proxyd, and nothing answers.
	t.Run("port-not-served", func(t *testing.T) {
		to := netip.AddrPortFrom(e.vip("web").Addr(), servicePort+1)
		tr := e.trace(t, e.client.IP, to)
		if tr.GetVerdict() != nodev1.TraceVerdict_TRACE_VERDICT_NOT_SERVED {
			t.Errorf("the trace of %s says %s, want NOT_SERVED (%v)", to, tr.GetVerdict(), tr.GetReasons())
		}
		if a, err := e.client.NetNS.DialTCP(ctxFor(t, opTimeout), to); err == nil {
			t.Errorf("%s answered %s: served after all", to, a)
		}
	})
}

// trace asks proxyd what it does with the first packet from src to to.
func (e *env) trace(t *testing.T, src netip.Addr, to netip.AddrPort) *nodev1.ProxyTraceServiceTraceResponse {
	t.Helper()
	var resp nodev1.ProxyTraceServiceTraceResponse
	if err := e.proxyd.Query(ctxFor(t, opTimeout), &resp, "trace", "--from", src.String(), "--to", fmt.Sprintf("%s/tcp", to)); err != nil {
		t.Fatal(err)
	}
	return &resp
}

// waitTrace polls proxyd's trace of a packet until its verdict is want
// (proxyd programs a change), and returns that answer.
func (e *env) waitTrace(t *testing.T, src netip.Addr, to netip.AddrPort, want nodev1.TraceVerdict) *nodev1.ProxyTraceServiceTraceResponse {
	t.Helper()
	var tr *nodev1.ProxyTraceServiceTraceResponse
	harness.Eventually(t, convergeTimeout, pollInterval, fmt.Sprintf("proxyd trace of %s says %s", to, want), func() (bool, string) {
		tr = e.trace(t, src, to)
		return tr.GetVerdict() == want, fmt.Sprintf("%s %v", tr.GetVerdict(), tr.GetReasons())
	})
	return tr
}

// lbIP is the LoadBalancer ingress IP the source range check gives its
// Service (a load balancer's address: the world routes it to node0).
var lbIP = netip.MustParseAddr("198.19.250.1")

// testTraceSourceRanges: a LoadBalancer IP whose source ranges hold the
// world's address is FORWARD and answers it; once they do not, it is DROP
// and the world's connection gets no answer.
func (e *env) testTraceSourceRanges(t *testing.T, world *netns.World) {
	services := e.admin.CoreV1().Services(namespace)
	svc, err := e.createService(ctxFor(t, opTimeout), "lb", "web", func(s *corev1.ServiceSpec) {
		s.Type = corev1.ServiceTypeLoadBalancer
		s.LoadBalancerSourceRanges = []string{netip.PrefixFrom(world.IP, 32).String()}
	})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lbIP.String()}}
	if svc, err = services.UpdateStatus(ctxFor(t, opTimeout), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	host := netip.PrefixFrom(lbIP, 32)
	if err := world.AddRoute(host, e.n0.IP); err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(lbIP, servicePort)

	tr := e.waitTrace(t, world.IP, to, nodev1.TraceVerdict_TRACE_VERDICT_FORWARD)
	a := e.dial(t, world.NetNS, to)
	if !slices.ContainsFunc(tr.GetEndpoints(), func(ep *nodev1.TraceEndpoint) bool {
		return ep.GetSelected() && strings.HasPrefix(ep.GetAddress(), e.pods[a.Name].IP.String()+":")
	}) {
		t.Errorf("%s answered the world, which the trace does not select: %v", a.Name, tr.GetEndpoints())
	}

	svc.Spec.LoadBalancerSourceRanges = []string{"198.18.50.0/24"}
	if _, err := services.Update(ctxFor(t, opTimeout), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitTrace(t, world.IP, to, nodev1.TraceVerdict_TRACE_VERDICT_DROP)
	ctx, cancel := context.WithTimeout(t.Context(), dropWait)
	defer cancel()
	if a, err := world.DialTCP(ctx, to); err == nil {
		t.Errorf("%s answered the world outside the source ranges; the trace says DROP", a.Name)
	}

	// Deleted, and waited out: the later steps count proxyd's writes.
	if err := services.Delete(ctxFor(t, opTimeout), svc.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := world.DelRoute(host); err != nil {
		t.Fatal(err)
	}
	e.waitTrace(t, world.IP, to, nodev1.TraceVerdict_TRACE_VERDICT_NOT_SERVED)
}

// dropWait is how long a connection proxyd drops is given to be answered.
const dropWait = 2 * time.Second
