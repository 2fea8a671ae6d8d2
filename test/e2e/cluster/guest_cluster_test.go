//go:build e2eguest

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
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
	// opTimeout bounds a group of API calls, or one allowed exchange.
	opTimeout = 30 * time.Second
	// startTimeout bounds the daemons' start, up to routerd's CNI config.
	startTimeout = 2 * time.Minute
	// convergeTimeout bounds a change's way into every node's kernel
	// (routes, IPVS, nftables), seen by traffic that starts to pass.
	convergeTimeout = time.Minute
	// attemptTimeout bounds one connection attempt while waiting for
	// traffic to pass: a dropped SYN (a pod firewalld does not know yet)
	// is retried on a new connection.
	attemptTimeout = 2 * time.Second
	// blockedTimeout is how long a denied connection gets to prove it is
	// dropped (firewalld drops, it does not reject). An allowed one over
	// the same path takes milliseconds; the checks make sure one did
	// just before.
	blockedTimeout = 1500 * time.Millisecond
	pollInterval   = 50 * time.Millisecond
)

const (
	nodeCount = 3
	// echoPort is where the pods serve the echo; servicePort is the
	// Services' port in front of it.
	echoPort    = 8080
	servicePort = 80
	// cniConfFile is routerd's default --cni-conf-file.
	cniConfFile = "10-nodenet.conflist"
	// firewalldMetrics is firewalld's default --metrics-addr, on the
	// node's own loopback.
	firewalldMetrics = "127.0.0.1:10282"
)

// daemonNames are the daemons of every node, in start order.
var daemonNames = []string{"routerd", "proxyd", "firewalld"}

// cluster is what the scenarios share: the control plane's API, three
// nodes, and routerd, proxyd and firewalld running in each.
type cluster struct {
	topo  *netns.Topology
	nodes []*netns.Node
	// joiner is the topology's last node, not registered and with no
	// daemon running until it joins the cluster (scenario 3); it then
	// goes to nodes, and joinerDaemons to daemons.
	joiner        *netns.Node
	joinerDaemons map[string]*daemonproc.Daemon
	world         *netns.World
	admin         kubernetes.Interface
	daemons       []map[string]*daemonproc.Daemon // per node, by name
	// bird is the BGP observer outside the cluster, in the world: every
	// routerd's --peer (guest_bird_test.go).
	bird *bird

	mu sync.Mutex
	// policies is how many NetworkPolicies exist: every firewalld counts
	// them all ("policies" of its status).
	policies int
}

// newCluster builds the topology, registers the Nodes and starts the three
// daemons of each node, and returns once every daemon is ready, sees its
// two peers, and routerd wrote the node's CNI config.
func newCluster(t *testing.T) *cluster {
	begin := time.Now()
	c := &cluster{}
	// No CNI config: routerd writes it (once firewalld is in force).
	// One node more than the cluster starts with: the joiner, on a subnet
	// of its own behind the world, so that the others reach its pods
	// through routerd's IPIP tunnels.
	c.topo = netns.New(t, netns.Options{Nodes: nodeCount + 1, RoutedNodes: 1, NoCNIConfig: true})
	all := c.topo.Nodes()
	c.nodes, c.joiner, c.world = all[:nodeCount], all[nodeCount], c.topo.World()
	c.admin = harness.AdminClient(t)

	// One at a time, so that kube-controller-manager gives node i the i-th
	// /24, the one the topology's address plan has.
	ctx := ctxFor(t, opTimeout)
	for _, n := range c.nodes {
		if _, err := controlplane.CreateNode(ctx, c.admin, n.Name, n.IP); err != nil {
			t.Fatal(err)
		}
		cidrs, err := controlplane.WaitForPodCIDRs(ctx, c.admin, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(cidrs) != 1 || cidrs[0] != n.PodCIDR {
			t.Fatalf("node %s got pod CIDRs %v, the topology has %v", n.Name, cidrs, n.PodCIDR)
		}
	}
	t.Logf("setup: topology and Nodes (pod CIDRs allocated) in %v", time.Since(begin).Round(time.Millisecond))

	// The BGP observer, before the daemons: routerd's first BGP sync
	// waits for the session with its --peer.
	c.bird = startBIRD(t, c.world, all)

	phase := time.Now()
	for _, n := range c.nodes {
		c.daemons = append(c.daemons, c.newDaemons(t, n))
	}
	// Made now so that they live as long as the cluster; none starts
	// before the joiner joins.
	c.joinerDaemons = c.newDaemons(t, c.joiner)
	for _, ds := range c.daemons {
		for _, name := range daemonNames {
			if err := ds[name].Start(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// routerd writes the CNI config once it has the node's pod CIDR and
	// firewalld reports its policies in force. Waiting for it first is
	// cheap (a stat); the status commands asked next (a process each,
	// slow under TCG) then mostly answer "ready" at once.
	cniAt := make([]time.Duration, len(c.nodes))
	harness.Eventually(t, startTimeout, pollInterval, "routerd writes the CNI config of every node", func() (bool, string) {
		var missing []string
		for i, n := range c.nodes {
			for _, name := range daemonNames {
				if d := c.daemons[i][name]; !d.Running() {
					t.Fatalf("%s on %s exited: %v\n%s", name, n.Name, d.ExitError(), d.Logs(16<<10))
				}
			}
			if cniAt[i] != 0 {
				continue
			}
			if _, err := os.Stat(filepath.Join(n.CNIConfDir, cniConfFile)); err == nil {
				cniAt[i] = time.Since(phase)
			} else {
				missing = append(missing, n.Name)
			}
		}
		return len(missing) == 0, "no CNI config yet on " + strings.Join(missing, ", ")
	})
	var cni []string
	for i, n := range c.nodes {
		cni = append(cni, fmt.Sprintf("%s %v", n.Name, cniAt[i].Round(time.Millisecond)))
	}
	t.Logf("setup: routerd wrote the CNI config after: %s", strings.Join(cni, ", "))

	// Ready: healthy, a sync done, both peers connected.
	ctx = ctxFor(t, startTimeout)
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(c.nodes)*len(daemonNames))
	)
	for i := range c.nodes {
		for j, name := range daemonNames {
			wg.Go(func() {
				_, errs[i*len(daemonNames)+j] = c.daemons[i][name].WaitStatus(ctx, "ready, peers connected", readyWithPeers)
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("setup: the three daemons of %d nodes started, CNI configs written, every daemon ready in %v", nodeCount, time.Since(phase).Round(time.Millisecond))
	return c
}

// newDaemons prepares the three daemons of node n (none runs yet): its
// relay to the apiserver, its run directory, and each daemon's flags.
func (c *cluster) newDaemons(t *testing.T, n *netns.Node) map[string]*daemonproc.Daemon {
	t.Helper()
	harness.StartRelay(t, n.NetNS) // before the daemons: it closes after them
	// The node's run directory, shared by its three daemons (the pod's
	// emptyDir). A short path: sun_path holds 108 bytes.
	runDir, err := os.MkdirTemp("", "nn-"+n.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(runDir) })
	args := map[string][]string{
		"routerd": {
			"--cni-conf-dir=" + n.CNIConfDir,
			"--ipam-data-dir=" + n.IPAMDir,
			// Direct routes on the underlay, IPIP to and from the
			// joiner on its own subnet (scenario 3).
			"--tunnel=ipip",
			// Pods keep their address to Services, as the chart
			// configures it: the Service CIDR is not masqueraded.
			"--no-masquerade=" + controlplane.ServiceCIDR,
			// BIRD in the world learns from each node the Services'
			// cluster and external IPs it advertises (scenario 3).
			fmt.Sprintf("--peer=address=%s asn=%d", c.world.IP, worldASN),
			"--advertise-cluster-ip",
			"--advertise-external-ip",
		},
	}
	ds := map[string]*daemonproc.Daemon{}
	for _, name := range daemonNames {
		// --peers is left to its default: the other two daemons.
		ds[name] = daemonproc.New(t, daemonproc.Config{
			Daemon: name, Bin: harness.Binary(t, name), Node: n,
			Kubeconfig: harness.Kubeconfig(t, controlplane.Identity(name)),
			Args:       args[name], RunDir: runDir, LogDir: harness.Out(t),
		})
	}
	return ds
}

// readyWithPeers accepts a daemon that is healthy, has synced, and is
// connected to every peer daemon it watches (--peers: by default the other
// two of its node; fewer when one is disabled, scenario 4).
func readyWithPeers(r daemonproc.Report) (bool, string) {
	if !r.Serving() || r.Status.Syncs() == 0 {
		return false, fmt.Sprintf("health %s, %d syncs, error %q, last sync error %q", r.Health, r.Status.Syncs(), r.Error, r.Status.Sync.LastError)
	}
	var peers []string
	connected := 0
	for _, p := range r.Status.Peers {
		peers = append(peers, fmt.Sprintf("%s connected=%v %s", p.Name, p.Connected, p.LastError))
		if p.Connected {
			connected++
		}
	}
	return connected == len(r.Status.Peers), "peers: " + strings.Join(peers, "; ")
}

// podSpec is a pod a scenario needs.
type podSpec struct {
	name   string
	node   int
	labels map[string]string
	// serve starts the echo server on echoPort.
	serve bool
}

// createPods creates the pods at once, each as a kubelet would: its
// network through CNI (routerd's config), its echo server, then its API
// object and its status (running, ready, the pod's IP).
func (c *cluster) createPods(t *testing.T, namespace string, specs []podSpec) map[string]*netns.Pod {
	t.Helper()
	ctx := ctxFor(t, opTimeout)
	pods := make([]*netns.Pod, len(specs))
	errs := make([]error, len(specs))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Go(func() {
			p, err := c.topo.CreatePod(ctx, c.nodes[s.node], s.name)
			if err != nil {
				errs[i] = err
				return
			}
			pods[i] = p
			if s.serve {
				if err := p.ServeTCP(echoPort); err != nil {
					errs[i] = err
					return
				}
			}
			obj := controlplane.NewPod(namespace, s.name, p.Node.Name, s.labels)
			if s.serve {
				obj.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "echo", ContainerPort: echoPort, Protocol: corev1.ProtocolTCP}}
			}
			if _, err := controlplane.CreatePod(ctx, c.admin, obj); err != nil {
				errs[i] = fmt.Errorf("pod %s: %w", s.name, err)
				return
			}
			if _, err := controlplane.SetPodRunning(ctx, c.admin, namespace, s.name, p.IP); err != nil {
				errs[i] = fmt.Errorf("pod %s status: %w", s.name, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	m := map[string]*netns.Pod{}
	var desc []string
	for i, s := range specs {
		m[s.name] = pods[i]
		desc = append(desc, fmt.Sprintf("%s %s on %s", s.name, pods[i].IP, pods[i].Node.Name))
	}
	t.Logf("pods: %s", strings.Join(desc, ", "))
	return m
}

// createService creates a Service of type typ selecting app, servicePort
// → echoPort.
func (c *cluster) createService(t *testing.T, namespace, name, app string, typ corev1.ServiceType) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Type:     typ,
			Selector: map[string]string{"app": app},
			Ports: []corev1.ServicePort{{Name: "echo", Port: servicePort, TargetPort: intstr.FromInt32(echoPort),
				Protocol: corev1.ProtocolTCP}},
		},
	}
	created, err := c.admin.CoreV1().Services(namespace).Create(ctxFor(t, opTimeout), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("service %s/%s: %v", namespace, name, err)
	}
	return created
}

// createNamespace creates a namespace (and waits for its default
// ServiceAccount, without which Pods are refused).
func (c *cluster) createNamespace(t *testing.T, name string) {
	t.Helper()
	if _, err := controlplane.CreateNamespace(ctxFor(t, opTimeout), c.admin, name); err != nil {
		t.Fatal(err)
	}
}

// createPolicy creates an ingress NetworkPolicy selecting the pods of sel
// (nil: every pod of the namespace) and allowing the pods of from (nil:
// nothing: default deny), then waits until every firewalld has it in
// force.
func (c *cluster) createPolicy(t *testing.T, namespace, name string, sel, from map[string]string) {
	t.Helper()
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: sel},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	if from != nil {
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: from}}},
		}}
	}
	begin := time.Now()
	if _, err := c.admin.NetworkingV1().NetworkPolicies(namespace).Create(ctxFor(t, opTimeout), np, metav1.CreateOptions{}); err != nil {
		t.Fatalf("policy %s/%s: %v", namespace, name, err)
	}
	c.mu.Lock()
	c.policies++
	want := c.policies
	c.mu.Unlock()
	c.waitPolicies(t, want)
	t.Logf("policy %s/%s in force on every node after %v", namespace, name, time.Since(begin).Round(time.Millisecond))
}

// waitPolicies waits until every node's firewalld has applied a sync that
// counts want policies, with nothing pending.
func (c *cluster) waitPolicies(t *testing.T, want int) {
	t.Helper()
	ctx := ctxFor(t, convergeTimeout)
	var wg sync.WaitGroup
	errs := make([]error, len(c.daemons))
	for i, ds := range c.daemons {
		wg.Go(func() {
			_, errs[i] = ds["firewalld"].WaitStatus(ctx, fmt.Sprintf("%d policies in force", want), func(r daemonproc.Report) (bool, string) {
				n, _ := r.Status.Count("policies")
				return r.Serving() && !r.Status.Sync.Pending && n == uint64(want),
					fmt.Sprintf("health %s, %d policies, pending %v, last error %q", r.Health, n, r.Status.Sync.Pending, r.Status.Sync.LastError)
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// reach waits until a connection from ns to addr is answered (new
// connections, each given attemptTimeout) and returns the answer.
func reach(ctx context.Context, ns *netns.NetNS, addr netip.AddrPort) (echo.Answer, error) {
	var a echo.Answer
	err := harness.Poll(ctx, convergeTimeout, pollInterval, func() (bool, string) {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		defer cancel()
		var err error
		a, err = ns.DialTCP(actx, addr)
		return err == nil, fmt.Sprint(err)
	})
	if err != nil {
		return a, fmt.Errorf("%s to %s: %w", ns.Name, addr, err)
	}
	return a, nil
}

// dial connects from ns to addr, asks once and returns the answer; the
// path is known to work, so a failure fails t.
func dial(t *testing.T, ns *netns.NetNS, addr netip.AddrPort) echo.Answer {
	t.Helper()
	a, err := ns.DialTCP(ctxFor(t, opTimeout), addr)
	if err != nil {
		t.Fatalf("%s to %s: %v", ns.Name, addr, err)
	}
	return a
}

// expectBlocked tries a connection from ns to each of addrs at once and
// fails t for every one that is answered, or even connected: firewalld
// drops a denied connection's first packet, so the connection attempt
// gets no answer within blockedTimeout.
func expectBlocked(t *testing.T, ns *netns.NetNS, addrs ...netip.AddrPort) {
	t.Helper()
	outcomes := make([]string, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), blockedTimeout)
			defer cancel()
			s, err := ns.OpenTCP(ctx, addr)
			if err != nil {
				// The dialer's own deadline (the context's) may fire
				// before the context says it ended.
				var ne net.Error
				if ctx.Err() == nil && !(errors.As(err, &ne) && ne.Timeout()) {
					outcomes[i] = fmt.Sprintf("the connection failed (%v), want no answer (dropped)", err)
				}
				return // blocked
			}
			defer s.Close()
			a, err := s.Ask(ctx)
			if err != nil {
				outcomes[i] = fmt.Sprintf("connected (the handshake passed), then %v", err)
				return
			}
			outcomes[i] = fmt.Sprintf("answered by %s (which saw source %s)", a.Name, a.Source)
		})
	}
	wg.Wait()
	for i, addr := range addrs {
		if outcomes[i] != "" {
			t.Errorf("%s to %s: %s; want blocked", ns.Name, addr, outcomes[i])
		}
	}
}

// vip is a Service's ClusterIP:port.
func vip(svc *corev1.Service) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), servicePort)
}

// podAddr is a pod's echo server.
func podAddr(p *netns.Pod) netip.AddrPort { return netip.AddrPortFrom(p.IP, echoPort) }

// ctxFor bounds the test's own calls by d. It outlives t.Context(), which
// is cancelled before t's cleanups run.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), d)
	t.Cleanup(cancel)
	return ctx
}
