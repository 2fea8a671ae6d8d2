//go:build e2eguest

package proxyd

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/daemonproc"
	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
	"github.com/nodenet/nodenet/test/netns/echo"
)

// Bounds of the waits. Under TCG the guest runs Go about 13 times slower
// than the host: generous, and a passing run never waits for them.
const (
	opTimeout       = 30 * time.Second // one connection, exchange or API call
	convergeTimeout = 60 * time.Second // proxyd programs a change
	startTimeout    = 90 * time.Second // proxyd starts and completes a sync
	pollInterval    = 50 * time.Millisecond
)

const (
	namespace   = "e2e"
	servicePort = 80
	backendPort = 8080
	// metricsAddr is proxyd's /metrics in node0's namespace (its own
	// loopback: nothing else listens there).
	metricsAddr = "127.0.0.1:10281"
)

// env is what the steps of TestGuest share.
type env struct {
	t      *testing.T // TestGuest's: what lives as long as the topology
	topo   *netns.Topology
	n0, n1 *netns.Node
	client *netns.Pod
	pods   map[string]*netns.Pod
	admin  kubernetes.Interface
	svcs   map[string]*corev1.Service
	ipvs   ipvs.Client // in node0's namespace
	http   *http.Client

	proxyd *daemonproc.Daemon
	// pristine is node0's kernel state before proxyd first ran.
	pristine snapshot
}

// setup builds everything the steps use and starts proxyd in node0.
func setup(t *testing.T) *env {
	begin := time.Now()
	e := &env{
		t:    t,
		pods: map[string]*netns.Pod{},
		svcs: map[string]*corev1.Service{},
	}
	e.topo = netns.New(t, netns.Options{Nodes: 2})
	e.n0, e.n1 = e.topo.Node(0), e.topo.Node(1)
	if err := e.topo.RouteAllPodCIDRs(); err != nil {
		t.Fatal(err)
	}
	e.ipvs = ipvsClient(t, e.n0.NetNS)
	e.http = e.n0.HTTPClient(opTimeout)
	e.admin = harness.AdminClient(t)
	phase := time.Now()

	ctx := ctxFor(t, 2*opTimeout)
	// What does not depend on each other runs at once: the Nodes (one at a
	// time, so that nodeipam gives node i the i-th /24, as the topology
	// did), the namespace, and the pods' network (CNI ADD).
	backends := []struct {
		name, app string
		node      *netns.Node
	}{
		{"web-1", "web", e.n1}, {"web-2", "web", e.n1},
		{"local-1", "local", e.n0}, {"local-2", "local", e.n1},
	}
	pods := make([]*netns.Pod, len(backends))
	var g errgroup.Group
	g.Go(func() error { return e.createNodes(ctx) })
	g.Go(func() error {
		_, err := controlplane.CreateNamespace(ctx, e.admin, namespace)
		return err
	})
	g.Go(func() (err error) {
		e.client, err = e.topo.CreatePod(ctx, e.n0, "client")
		return err
	})
	for i, b := range backends {
		g.Go(func() (err error) {
			if pods[i], err = e.topo.CreatePod(ctx, b.node, b.name); err != nil {
				return err
			}
			return pods[i].ServeTCP(backendPort)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	phase2 := time.Now()
	// Then the API objects, also at once.
	for i, b := range backends {
		e.pods[b.name] = pods[i]
		g.Go(func() error { return e.createBackend(ctx, pods[i], b.app) })
	}
	services := []struct {
		name, app string
		spec      func(*corev1.ServiceSpec)
	}{
		{"web", "web", func(*corev1.ServiceSpec) {}},
		{"sticky", "web", func(s *corev1.ServiceSpec) { s.SessionAffinity = corev1.ServiceAffinityClientIP }},
		{"web-np", "web", func(s *corev1.ServiceSpec) {
			s.Type = corev1.ServiceTypeNodePort
			s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}},
		{"local-np", "local", func(s *corev1.ServiceSpec) {
			s.Type = corev1.ServiceTypeNodePort
			s.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}},
	}
	created := make([]*corev1.Service, len(services))
	for i, sv := range services {
		g.Go(func() (err error) {
			created[i], err = e.createService(ctx, sv.name, sv.app, sv.spec)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, sv := range services {
		e.svcs[sv.name] = created[i]
	}
	t.Logf("setup: topology in %v; nodes, namespace and pods' network in %v; pods and Services in %v",
		phase.Sub(begin).Round(time.Millisecond), phase2.Sub(phase).Round(time.Millisecond), time.Since(phase2).Round(time.Millisecond))

	// What proxyd must leave alone, then the state cleanup must restore.
	e.addForeignState(t)
	e.pristine = e.snapshot(t)

	phase = time.Now()
	e.startRelay(t)
	e.proxyd = e.newProxyd(t)
	gen, routes := e.nftGeneration(t), e.watchRoutes(t)
	e.startProxyd(t)
	m := e.waitSynced(t)
	t.Logf("setup: proxyd started and synced in %v; its first syncs wrote %v", time.Since(phase).Round(time.Millisecond), m.writes())
	e.waitProgrammed(t)
	// The witnesses the restart step relies on see proxyd's writes: its
	// counter, the routes' notifications, the nftables generation.
	if m := e.metrics(t); m.writes()[writesIPVS] == 0 || m.writes()[writesRoutes] == 0 || m.writes()[writesNFTables] == 0 {
		t.Fatalf("proxyd programmed the kernel but counted no writes: %v", m.writes())
	}
	if ev := routes(); len(ev) == 0 {
		t.Fatal("the route monitor saw none of proxyd's VIP routes come")
	}
	if g := e.nftGeneration(t); g == gen {
		t.Fatalf("the nftables generation stayed at %d while proxyd made its table", g)
	}
	t.Logf("setup: done in %v", time.Since(begin).Round(time.Millisecond))
	return e
}

// waitProgrammed waits until node0's IPVS holds every Service as the
// rules say.
func (e *env) waitProgrammed(t *testing.T) {
	t.Helper()
	web := map[netip.AddrPort]uint32{backend(e.pods["web-1"]): 1, backend(e.pods["web-2"]): 1}
	local := map[netip.AddrPort]uint32{backend(e.pods["local-1"]): 1, backend(e.pods["local-2"]): 1}
	e.waitDests(t, "web", web, 0)
	e.waitDests(t, "sticky", web, uint32(corev1.DefaultClientIPServiceAffinitySeconds))
	e.waitDests(t, "web-np", web, 0)
	e.waitVS(t, e.nodePort("web-np"), web, 0)
	e.waitDests(t, "local-np", local, 0)
	// externalTrafficPolicy Local: the NodePort has the local endpoint only.
	e.waitVS(t, e.nodePort("local-np"), map[netip.AddrPort]uint32{backend(e.pods["local-1"]): 1}, 0)
}

// createNodes registers the topology's nodes, one at a time, and checks
// that nodeipam gave each the pod CIDR the topology did.
func (e *env) createNodes(ctx context.Context) error {
	for _, n := range e.topo.Nodes() {
		if _, err := controlplane.CreateNode(ctx, e.admin, n.Name, n.IP); err != nil {
			return err
		}
		cidrs, err := controlplane.WaitForPodCIDRs(ctx, e.admin, n.Name)
		if err != nil {
			return err
		}
		if len(cidrs) != 1 || cidrs[0] != n.PodCIDR {
			return fmt.Errorf("node %s got pod CIDRs %v, the topology has %v", n.Name, cidrs, n.PodCIDR)
		}
	}
	return nil
}

// createBackend creates the API object of a pod serving the echo on
// backendPort, running and ready with the pod's IP.
func (e *env) createBackend(ctx context.Context, p *netns.Pod, app string) error {
	pod := controlplane.NewPod(namespace, p.Name, p.Node.Name, map[string]string{"app": app})
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "echo", ContainerPort: backendPort, Protocol: corev1.ProtocolTCP}}
	if _, err := controlplane.CreatePod(ctx, e.admin, pod); err != nil {
		return err
	}
	_, err := controlplane.SetPodRunning(ctx, e.admin, namespace, p.Name, p.IP)
	return err
}

// createService creates a Service selecting app on servicePort → backendPort.
func (e *env) createService(ctx context.Context, name, app string, mod func(*corev1.ServiceSpec)) (*corev1.Service, error) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": app},
			Ports: []corev1.ServicePort{{Name: "echo", Port: servicePort, TargetPort: intstr.FromInt32(backendPort),
				Protocol: corev1.ProtocolTCP}},
		},
	}
	mod(&svc.Spec)
	created, err := e.admin.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	return created, nil
}

// deletePodGracefully deletes a pod with a grace period no kubelet will
// ever end: it stays terminating, and its endpoint serving but not ready.
func (e *env) deletePodGracefully(t *testing.T, name string) {
	t.Helper()
	grace := int64(3600)
	if err := e.admin.CoreV1().Pods(namespace).Delete(ctxFor(t, opTimeout), name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
}

// endpoint is the endpoint of ip in a Service's EndpointSlices.
func (e *env) endpoint(t *testing.T, svc string, ip netip.Addr) discoveryv1.Endpoint {
	t.Helper()
	slices, err := e.admin.DiscoveryV1().EndpointSlices(namespace).List(ctxFor(t, opTimeout),
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		t.Fatal(err)
	}
	for _, sl := range slices.Items {
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) > 0 && ep.Addresses[0] == ip.String() {
				return ep
			}
		}
	}
	t.Fatalf("no endpoint %s in the EndpointSlices of %s", ip, svc)
	return discoveryv1.Endpoint{}
}

// vip is the ClusterIP:port of a Service.
func (e *env) vip(svc string) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(e.svcs[svc].Spec.ClusterIP), servicePort)
}

// nodePort is node0's address with a Service's nodePort.
func (e *env) nodePort(svc string) netip.AddrPort {
	return netip.AddrPortFrom(e.n0.IP, uint16(e.svcs[svc].Spec.Ports[0].NodePort))
}

// dial connects from ns, asks once and returns the answer.
func (e *env) dial(t *testing.T, ns *netns.NetNS, addr netip.AddrPort) echo.Answer {
	t.Helper()
	a, err := ns.DialTCP(ctxFor(t, opTimeout), addr)
	if err != nil {
		t.Fatalf("%s to %s: %v", ns.Name, addr, err)
	}
	return a
}

// open opens a long-lived connection from ns; it closes with the test.
func (e *env) open(t *testing.T, ns *netns.NetNS, addr netip.AddrPort) *echo.Session {
	t.Helper()
	s, err := ns.OpenTCP(ctxFor(t, opTimeout), addr)
	if err != nil {
		t.Fatalf("%s to %s: %v", ns.Name, addr, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (e *env) ask(t *testing.T, s *echo.Session) echo.Answer {
	t.Helper()
	a, err := s.Ask(ctxFor(t, opTimeout))
	if err != nil {
		t.Fatalf("the open connection: %v", err)
	}
	return a
}

// sameConnection checks that an answer came over the same connection as
// first: the same backend, which sees the same client address and port.
func (e *env) sameConnection(t *testing.T, first, a echo.Answer, when string) {
	t.Helper()
	if a.Name != first.Name || a.Source != first.Source {
		t.Fatalf("%s: the connection answered as %s from %s, it started as %s from %s", when, a.Name, a.Source, first.Name, first.Source)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// startRelay makes the apiserver reachable in node0, where proxyd's
// kubeconfig points (see the package comment).
func (e *env) startRelay(t *testing.T) { harness.StartRelay(t, e.n0.NetNS) }
