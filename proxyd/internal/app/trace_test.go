package app

// `proxyd trace` end to end in one process: a proxyd daemon with its real
// controller over in-memory kernels and a fake API server serves the trace
// on its socket; the CLI asks it and prints text or JSON, compared with the
// golden files in testdata/trace (go test -run TestTraceCommand -update
// rewrites them).
//
// Address plan: node-0 198.18.0.10 in zone z1 with pods 198.18.128.0/24;
// node-1's pods 198.18.129.0/24; ClusterIPs 198.19.0.x; the LoadBalancer
// IP 198.19.200.1; clients 198.18.50.5 (allowed) and 198.18.60.1 (not).
// Dual-stack (no traffic here, documentation addresses): node-0 also
// 2001:db8::10 with pods 2001:db8:128::/64, Service shop/dual also at
// 2001:db8:19::13, client 2001:db8:50::5.

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/daemon/daemontest"
	"github.com/nodenet/nodenet/internal/testutil"
	"github.com/nodenet/nodenet/proxyd/internal/controller"
	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/reconcile"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/trace")

func traceObjects() []runtime.Object {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-0", Labels: map[string]string{corev1.LabelTopologyZone: "z1"}},
		Spec: corev1.NodeSpec{PodCIDRs: []string{"198.18.128.0/24", "2001:db8:128::/64"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.18.0.10"},
			{Type: corev1.NodeInternalIP, Address: "2001:db8::10"}}}}
	svc := func(name, ip string, mod func(*corev1.Service)) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, ResourceVersion: "1"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}
		if mod != nil {
			mod(s)
		}
		return s
	}
	type ep struct {
		pod, ip, node string
		ready         bool
	}
	slice := func(svc string, eps ...ep) *discoveryv1.EndpointSlice {
		sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: svc + "-1", ResourceVersion: "1",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}}}
		for _, e := range eps {
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip}, NodeName: ptr.To(e.node),
				TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: e.pod},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.ready)}})
		}
		return sl
	}
	return []runtime.Object{node,
		svc("web", "198.19.0.10", nil),
		slice("web", ep{"web-a", "198.18.128.5", "node-0", true}, ep{"web-b", "198.18.129.5", "node-1", true}, ep{"web-c", "198.18.129.6", "node-1", false}),
		svc("local", "198.19.0.11", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeNodePort, 30090
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}),
		slice("local", ep{"local-a", "198.18.129.8", "node-1", true}),
		svc("lb", "198.19.0.12", func(s *corev1.Service) {
			s.Spec.Type, s.Spec.Ports[0].NodePort = corev1.ServiceTypeLoadBalancer, 30091
			s.Spec.LoadBalancerSourceRanges = []string{"198.18.50.0/24"}
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "198.19.200.1"}}
		}),
		slice("lb", ep{"lb-a", "198.18.129.7", "node-1", true}),
		// Dual-stack: a ClusterIP per family, an EndpointSlice per family.
		svc("dual", "198.19.0.13", func(s *corev1.Service) {
			s.Spec.ClusterIPs = append(s.Spec.ClusterIPs, "2001:db8:19::13")
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
			s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
		}),
		slice("dual", ep{"dual-a", "198.18.128.9", "node-0", true}),
		v6(slice("dual", ep{"dual-a", "2001:db8:128::9", "node-0", true}, ep{"dual-b", "2001:db8:129::9", "node-1", true})),
	}
}

// v6 makes sl the IPv6 slice of its Service.
func v6(sl *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	sl.Name, sl.AddressType = strings.TrimSuffix(sl.Name, "-1")+"-v6", discoveryv1.AddressTypeIPv6
	return sl
}

// startProxyd runs proxyd's Spec with its controller over in-memory kernels.
func startProxyd(t *testing.T, runDir string) daemon.Spec {
	t.Helper()
	spec := Spec()
	client := fake.NewClientset(traceObjects()...)
	spec.NewController = func(deps daemon.Deps) (daemon.Controller, error) {
		rec := reconcile.New(reconcile.Config{NodePortMin: 30000, NodePortMax: 32767}, ipvs.NewFake(), vip.NewFake())
		return controller.New(deps, controller.DefaultConfig(), client, controller.Kernel{Reconciler: rec}, nil), nil
	}
	daemontest.Start(t, spec, runDir)
	return spec
}

// golden compares got with testdata/trace/name (go test -run
// TestTraceCommand -update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	daemontest.Golden(t, filepath.Join("testdata", "trace", name), got, *update)
}

func TestTraceCommand(t *testing.T) {
	runDir := testutil.SocketDir(t)
	spec := startProxyd(t, runDir)
	testutil.Eventually(t, 15*time.Second, "proxyd's first sync", nil, func() bool {
		return daemontest.Run(spec, "trace", "--run-dir", runDir, "--to", "198.19.0.10:80").Code == daemon.ExitOK
	})

	for _, tc := range []struct{ name, from, to string }{
		{"clusterip-from-local-pod", "shop/web-a", "198.19.0.10:80/tcp"},
		{"nodeport-local-no-local-endpoint", "198.18.50.5", "198.18.0.10:30090"},
		{"loadbalancer-source-allowed", "198.18.50.5", "198.19.200.1:80/TCP"},
		{"loadbalancer-source-denied", "198.18.60.1", "198.19.200.1:80"},
		{"port-not-served", "node", "198.19.0.10:81/udp"},
		{"dualstack-ipv6-clusterip", "2001:db8:50::5", "[2001:db8:19::13]:80/tcp"},
		{"dualstack-ipv6-from-local-pod", "shop/dual-a", "[2001:db8:19::13]:80"},
		{"dualstack-ipv4-clusterip", "198.18.50.5", "198.19.0.13:80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range []string{"json", "text"} {
				res := daemontest.Run(spec, "trace", "--run-dir", runDir, "--from", tc.from, "--to", tc.to, "-o", format)
				if res.Code != daemon.ExitOK || res.Stderr != "" {
					t.Fatalf("%s: exit %d, stderr %q", format, res.Code, res.Stderr)
				}
				golden(t, tc.name+"."+map[string]string{"json": "json", "text": "txt"}[format], daemontest.NormalizeSync(res.Stdout))
			}
		})
	}

	// Bad input: a clear message and exit 2, whether the CLI or proxyd finds it.
	for _, args := range [][]string{
		{"--to", "198.19.0.10"},
		{"--to", "198.19.0.10:80/icmp"},
		{"--to", "web:80"},
		{},
		{"--from", "198.18.0.0/24", "--to", "198.19.0.10:80"},
		{"--from", "shop/nobody", "--to", "198.19.0.10:80"},
		{"--from", "not an address", "--to", "198.19.0.10:80"},
		{"--to", "198.19.0.10:80", "-o", "yaml"},
	} {
		res := daemontest.Run(spec, append([]string{"trace", "--run-dir", runDir}, args...)...)
		if res.Code != daemon.ExitUsage || !strings.HasPrefix(res.Stderr, "proxyd trace: ") || res.Stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, res.Code, res.Stdout, res.Stderr)
		}
	}
	if res := daemontest.Run(spec, "trace", "--run-dir", runDir, "--from", "shop/nobody", "--to", "198.19.0.10:80"); !strings.Contains(res.Stderr, "unknown pod shop/nobody") {
		t.Errorf("unknown pod: %q", res.Stderr)
	}
	// No proxyd: a failure, not a usage error.
	if res := daemontest.Run(spec, "trace", "--run-dir", testutil.SocketDir(t), "--to", "198.19.0.10:80", "--timeout", "200ms"); res.Code != daemon.ExitFailure {
		t.Errorf("without proxyd: exit %d, stderr %q", res.Code, res.Stderr)
	}
}
