package app

// `firewalld trace` end to end in one process: a firewalld daemon with its
// real controller over an in-memory table and a fake API server serves the
// trace on its socket; the CLI asks it and prints text or JSON, compared
// with the golden files in testdata/trace (go test -run TestTraceCommand
// -update rewrites them).
//
// Address plan: node-0's pods 198.18.128.0/24 (shop/web 198.18.128.5 with
// the named port http=8080, shop/client 198.18.128.6, other/client
// 198.18.128.7); node-1's pods 198.18.129.0/24 (shop/remote
// 198.18.129.5); node-0's bridge 198.18.128.1; the world at 198.18.0.1. Dual-stack (no traffic here,
// documentation addresses): node-0's pods also 2001:db8:128::/64, shop/web
// also 2001:db8:128::5, shop/client 2001:db8:128::6; outside 2001:db8::1.

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/firewalld/internal/controller"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/daemon/daemontest"
	"github.com/nodenet/nodenet/internal/testutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/trace")

// memTable is a table that takes everything: the trace reads the compiler.
type memTable struct{}

func (memTable) Apply(*model.Datapath) (int, error)                    { return 0, nil }
func (memTable) ApplyDelta(*model.Datapath, *model.Delta) (int, error) { return 0, nil }
func (memTable) Invalidate()                                           {}
func (memTable) Drops() (controller.Drops, error)                      { return controller.Drops{}, nil }

func traceObjects() []runtime.Object {
	ns := func(name string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/metadata.name": name}}}
	}
	pod := func(ns, name, node, ip, app string, more ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": app}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}}
		for _, a := range more {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: a})
		}
		return p
	}
	tcp, http := corev1.ProtocolTCP, intstr.FromString("http")
	webIn := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-in"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: &tcp, Port: &http}},
			}}}}
	clientOut := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "client-out"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "198.18.0.0/16", Except: []string{"198.18.0.0/24"}}}},
			}}}}
	return []runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-0"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"198.18.128.0/24", "2001:db8:128::/64"}}},
		ns("shop"), ns("other"),
		pod("shop", "web", "node-0", "198.18.128.5", "web", "2001:db8:128::5"),
		pod("shop", "client", "node-0", "198.18.128.6", "client", "2001:db8:128::6"),
		pod("other", "client", "node-0", "198.18.128.7", "client"),
		pod("shop", "remote", "node-1", "198.18.129.5", "client"),
		webIn, clientOut,
	}
}

// startFirewalld runs firewalld's Spec with its controller over memTable.
func startFirewalld(t *testing.T, runDir string) daemon.Spec {
	t.Helper()
	spec := Spec()
	client := fake.NewClientset(traceObjects()...)
	spec.NewController = func(deps daemon.Deps) (daemon.Controller, error) {
		return controller.New(deps, client, memTable{}, nil, nil), nil
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
	spec := startFirewalld(t, runDir)
	testutil.Eventually(t, 15*time.Second, "firewalld's first sync", nil, func() bool {
		return daemontest.Run(spec, "trace", "--run-dir", runDir, "--from", "shop/client", "--to", "shop/web:8080").Code == daemon.ExitOK
	})

	for _, tc := range []struct{ name, from, to string }{
		{"both-local-allowed", "shop/client", "shop/web:8080/tcp"},
		{"ingress-wrong-port", "shop/client", "198.18.128.5:80"},
		{"ingress-other-namespace", "other/client", "shop/web:8080"},
		{"egress-denied-remote", "shop/client", "198.18.0.1:443/tcp"},
		{"not-isolated", "198.18.0.1", "other/client:53/udp"},
		{"same-pod", "shop/web", "shop/web:8080"},
		{"from-this-node", "198.18.128.1", "shop/web:8080"},
		{"to-this-node", "shop/client", "198.18.128.1:10250"},
		{"dualstack-ipv6-both-local-allowed", "2001:db8:128::6", "shop/web:8080"},
		{"dualstack-ipv6-egress-outside-ipblock", "shop/client", "[2001:db8::1]:443/tcp"},
		{"dualstack-ipv6-ingress-from-outside", "2001:db8::1", "[2001:db8:128::5]:8080"},
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

	// Bad input: a clear message and exit 2, whether the CLI or firewalld finds it.
	for _, args := range [][]string{
		{"--from", "shop/client"},
		{"--to", "shop/web:80"},
		{"--from", "shop/client", "--to", "shop/web"},
		{"--from", "shop/client", "--to", "shop/web:0"},
		{"--from", "shop/client", "--to", "shop/web:80/icmp"},
		{"--from", "198.18.0.0/24", "--to", "shop/web:80"},
		{"--from", "not an address", "--to", "shop/web:80"},
		{"--from", "shop/nobody", "--to", "shop/web:80"},
		{"--from", "other/client", "--to", "[2001:db8::1]:80"}, // IPv4 only
		{"--from", "shop/client", "--to", "shop/web:80", "-o", "yaml"},
	} {
		res := daemontest.Run(spec, append([]string{"trace", "--run-dir", runDir}, args...)...)
		if res.Code != daemon.ExitUsage || !strings.HasPrefix(res.Stderr, "firewalld trace: ") || res.Stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, res.Code, res.Stdout, res.Stderr)
		}
	}
	if res := daemontest.Run(spec, "trace", "--run-dir", runDir, "--from", "shop/nobody", "--to", "shop/web:80"); !strings.Contains(res.Stderr, "unknown pod shop/nobody") {
		t.Errorf("unknown pod: %q", res.Stderr)
	}
	// No firewalld: a failure, not a usage error.
	if res := daemontest.Run(spec, "trace", "--run-dir", testutil.SocketDir(t), "--from", "shop/client", "--to", "shop/web:80", "--timeout", "200ms"); res.Code != daemon.ExitFailure {
		t.Errorf("without firewalld: exit %d, stderr %q", res.Code, res.Stderr)
	}
}
