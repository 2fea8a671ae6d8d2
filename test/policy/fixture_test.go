//go:build kernel

package policy

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/nodenet/nodenet/test/binaries"
	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/daemonproc"
	"github.com/nodenet/nodenet/test/netns"
	"github.com/nodenet/nodenet/test/netns/echo"
)

// Bounds of the waits. A passing run never waits for any of them.
const (
	// apiTimeout bounds a group of API calls.
	apiTimeout = 30 * time.Second
	// probeTimeout bounds one probe. A denied TCP connection is a dropped
	// SYN, so a denied probe always lasts this long: short, and every
	// probe of a matrix runs at once.
	probeTimeout = time.Second
	// convergeTimeout bounds how long a matrix may take to match after a
	// change (firewalld's sync interval and its informers' latency).
	convergeTimeout = 30 * time.Second
	// roundInterval paces the rounds of probes while a matrix converges.
	roundInterval = 100 * time.Millisecond
)

// fixture is the cluster every case runs in: a control plane, a topology
// of two nodes and the world namespace, namespaces x, y, z with pods a, b
// on node0 and c on node1 (API objects and network namespaces), echo
// servers on every served port in every pod, node and the world, and
// firewalld running in each node. Cases change policies and labels only
// (apply) and restore them when they end (reset).
type fixture struct {
	model Model
	cp    *controlplane.ControlPlane
	admin kubernetes.Interface
	topo  *netns.Topology
	nodes []*netns.Node
	pods  map[Peer]*netns.Pod
	// ports are the ports of the matrices; without SCTP (noSCTP set) their
	// SCTP cells are skipped, never probed.
	ports  []Port
	noSCTP error
	fw     []*daemonproc.Daemon // by node index
	// gate is why the cases needing enforcement are skipped ("" when
	// firewalld enforces policies).
	gate string

	// What the cluster holds now, which apply diffs against.
	policies  map[string]appliedPolicy // by namespace/name
	podLabels map[Peer]map[string]string
	nsLabels  map[string]map[string]string

	timings *timings
	// trace are the clients of firewalld's trace (trace_test.go).
	trace tracers
}

var _ addresses = (*fixture)(nil)

// PodIP is part of addresses.
func (f *fixture) PodIP(p Peer) netip.Addr { return f.pods[p].IP }

// PodCIDR is part of addresses.
func (f *fixture) PodCIDR(node int) netip.Prefix { return f.nodes[node].PodCIDR }

// WorldIP is part of addresses.
func (f *fixture) WorldIP() netip.Addr { return f.topo.World().IP }

// newFixture builds the fixture for t, torn down when t ends. It skips t
// when not root or when the control plane binaries are not built.
func newFixture(t *testing.T) *fixture {
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, firewalld's nftables table in each node): run as root: go test -tags kernel -v ./test/policy")
	}
	f := &fixture{
		model: DefaultModel(), ports: ServedPorts(), pods: map[Peer]*netns.Pod{},
		policies: map[string]appliedPolicy{}, podLabels: map[Peer]map[string]string{},
		nsLabels: map[string]map[string]string{}, timings: &timings{},
	}
	t.Cleanup(func() { t.Logf("timings:\n%s", f.timings) })
	t.Cleanup(func() { f.trace.close(f.timings) }) // before the timings are logged

	// firewalld builds while the control plane starts.
	phase := time.Now()
	var (
		bins   map[string]string
		binErr error
		wg     sync.WaitGroup
	)
	binDir := t.TempDir()
	wg.Go(func() { bins, binErr = binaries.Build(binDir, "firewalld") })
	// Waited for however the test ends (a skip, say), before binDir goes.
	defer wg.Wait()
	f.cp = controlplane.StartForTestWith(t, controlplane.Options{})
	// The pods declare a port twice (the "http" alias, see podContainers):
	// the apiserver warns about it on every write, which client-go would
	// log each time.
	cfg := f.cp.RESTConfig(controlplane.Admin)
	cfg.WarningHandler = rest.NoWarnings{}
	admin, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.admin = admin
	f.timings.add("setup: control plane", f.cp.StartDuration)
	wg.Wait()
	if binErr != nil {
		t.Fatalf("build firewalld: %v", binErr)
	}
	f.timings.add("setup: control plane, and firewalld built meanwhile", time.Since(phase))

	phase = time.Now()
	f.topo = netns.New(t, netns.Options{Nodes: 2})
	f.nodes = f.topo.Nodes()
	t.Logf("br_netfilter: %s", f.setBridgeNetfilter(t))
	if err := f.routes(); err != nil {
		t.Fatal(err)
	}
	if err := f.topo.World().ProbeSCTP(); err != nil {
		if !errors.Is(err, echo.ErrSCTPUnsupported) {
			t.Fatal(err)
		}
		f.noSCTP = err
		t.Logf("SCTP: every SCTP cell of every matrix is skipped, never counted as passed: %v", err)
	}
	f.timings.add("setup: topology, sysctls, routes", time.Since(phase))

	phase = time.Now()
	f.createCluster(t)
	f.timings.add("setup: nodes, namespaces, pods (API and network), echo servers", time.Since(phase))

	phase = time.Now()
	f.startFirewalld(t, bins["firewalld"])
	f.timings.add("setup: firewalld started and synced on both nodes", time.Since(phase))
	f.gate = f.enforcementGate(t)
	if f.gate != "" {
		t.Logf("gate: %s: every case but no-policy is skipped", f.gate)
	}
	return f
}

// stepContext bounds the test's own calls by d. It outlives t.Context(),
// which is cancelled before t's cleanups run: reset, which every case runs
// in a cleanup, needs the API, the probes and firewalld's status.
func stepContext(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(t.Context()), d)
}

// routes route the nodes' pod CIDRs between the nodes (no routerd here),
// and from the world to each node's pods, so the world client reaches pods
// and pods reach it, unNATed.
func (f *fixture) routes() error {
	if err := f.topo.RouteAllPodCIDRs(); err != nil {
		return err
	}
	for _, n := range f.nodes {
		if err := f.topo.World().AddRoute(n.PodCIDR, n.IP); err != nil {
			return err
		}
	}
	return nil
}

// createCluster registers the nodes, namespaces and pods through the API
// (as a kubelet would, status included) and makes the pods' network
// namespaces, with an echo server on every port in every pod, node and
// the world.
func (f *fixture) createCluster(t *testing.T) {
	ctx, cancel := stepContext(t, apiTimeout)
	defer cancel()
	var g errgroup.Group
	g.Go(func() error { return f.createNodes(ctx) })
	for _, ns := range f.model.Namespaces {
		g.Go(func() error {
			if _, err := controlplane.CreateNamespace(ctx, f.admin, ns); err != nil {
				return err
			}
			return f.setNamespaceLabels(ctx, ns, namespaceLabelsAt(step{}, ns))
		})
	}
	var mu sync.Mutex
	for _, p := range f.model.Pods() {
		g.Go(func() error {
			pod, err := f.topo.CreatePod(ctx, f.nodes[nodeOf(p)], netnsName(p))
			if err != nil {
				return err
			}
			mu.Lock()
			f.pods[p] = pod
			mu.Unlock()
			return f.serve(pod.NetNS)
		})
	}
	for _, n := range f.nodes {
		g.Go(func() error { return f.serve(n.NetNS) })
	}
	g.Go(func() error { return f.serve(f.topo.World().NetNS) })
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	// The Pods need their nodes and namespaces, and carry the IPs CNI gave.
	for _, p := range f.model.Pods() {
		g.Go(func() error { return f.createPod(ctx, p, f.pods[p]) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range f.model.Namespaces {
		f.nsLabels[ns] = namespaceLabelsAt(step{}, ns)
	}
	for _, p := range f.model.Pods() {
		f.podLabels[p] = podLabelsAt(step{}, p)
		t.Logf("pod %s: %s on %s", p, f.pods[p].IP, f.pods[p].Node.Name)
	}
}

// netnsName is the network namespace (and echo) name of a pod: names are
// unique across a topology, pod names only within a namespace.
func netnsName(p Peer) string { return p.Namespace + "-" + p.Name }

// createNodes registers the topology's nodes one at a time, so that
// nodeipam hands node i the i-th /24 as the topology did, and checks it.
func (f *fixture) createNodes(ctx context.Context) error {
	for _, n := range f.nodes {
		if _, err := controlplane.CreateNode(ctx, f.admin, n.Name, n.IP); err != nil {
			return err
		}
		cidrs, err := controlplane.WaitForPodCIDRs(ctx, f.admin, n.Name)
		if err != nil {
			return err
		}
		if len(cidrs) != 1 || cidrs[0] != n.PodCIDR {
			return fmt.Errorf("node %s got pod CIDRs %v, the topology has %v", n.Name, cidrs, n.PodCIDR)
		}
	}
	return nil
}

// createPod creates pod p's API object on its node, with its labels and
// container ports, and writes the status a kubelet would: running, ready,
// with the network namespace's IP.
func (f *fixture) createPod(ctx context.Context, p Peer, pod *netns.Pod) error {
	obj := controlplane.NewPod(p.Namespace, p.Name, pod.Node.Name, podLabelsAt(step{}, p))
	obj.Spec.Containers = podContainers(p)
	if _, err := controlplane.CreatePod(ctx, f.admin, obj); err != nil {
		return fmt.Errorf("pod %s: %w", p, err)
	}
	if _, err := controlplane.SetPodRunning(ctx, f.admin, p.Namespace, p.Name, pod.IP); err != nil {
		return fmt.Errorf("pod %s: %w", p, err)
	}
	return nil
}

// serve starts an echo server on every served port in ns (SCTP only where
// the kernel has it).
func (f *fixture) serve(ns *netns.NetNS) error {
	for _, p := range f.ports {
		if p.Protocol == "SCTP" && f.noSCTP != nil {
			continue
		}
		if err := serve1(ns, p); err != nil {
			return err
		}
	}
	return nil
}

// serve1 starts one echo server.
func serve1(ns *netns.NetNS, p Port) error {
	switch p.Protocol {
	case "TCP":
		return ns.ServeTCP(uint16(p.Number))
	case "UDP":
		return ns.ServeUDP(uint16(p.Number))
	}
	return ns.ServeSCTP(uint16(p.Number))
}

// setPodLabels replaces a pod's labels.
func (f *fixture) setPodLabels(ctx context.Context, p Peer, l map[string]string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := f.admin.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		pod.Labels = maps.Clone(l)
		_, err = f.admin.CoreV1().Pods(p.Namespace).Update(ctx, pod, metav1.UpdateOptions{})
		return err
	})
}

// setNamespaceLabels replaces a namespace's labels (l includes the name
// label the apiserver insists on).
func (f *fixture) setNamespaceLabels(ctx context.Context, ns string, l map[string]string) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj, err := f.admin.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return err
		}
		obj.Labels = maps.Clone(l)
		_, err = f.admin.CoreV1().Namespaces().Update(ctx, obj, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("namespace %s: labels: %w", ns, err)
	}
	return nil
}

// flushConntrack empties the nodes' conntrack tables, where firewalld's
// connection tracking lives: a probe of an earlier step whose source port
// is reused must not ride an entry that predates a policy (firewalld
// accepts established connections by design).
func (f *fixture) flushConntrack() error {
	var errs []error
	for _, n := range f.nodes {
		errs = append(errs, n.FlushConntrack())
	}
	return errors.Join(errs...)
}
