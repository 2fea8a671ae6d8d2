//go:build kernel

package routing

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/nodenet/nodenet/test/binaries"
	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/daemonproc"
	"github.com/nodenet/nodenet/test/netns"
)

// Bounds of the waits. A passing run never waits for any of them.
const (
	// apiTimeout bounds a group of API calls.
	apiTimeout = 30 * time.Second
	// startTimeout bounds a routerd start, up to its routes being in
	// every node (sessions, graceful restart's deferral included).
	startTimeout = 60 * time.Second
	// convergeTimeout bounds a change's way into every node's kernel.
	convergeTimeout = 30 * time.Second
	// dialTimeout bounds one echo exchange.
	dialTimeout = 5 * time.Second
	// pollInterval paces the polls of the kernels' routes.
	pollInterval = 10 * time.Millisecond
)

const (
	nodeCount = 3
	// routeProtocol is routerd's default --route-protocol.
	routeProtocol = 196
	// echoPort is where every pod and the world serve the echo.
	echoPort = 8080
	// cniConfFile is routerd's default --cni-conf-file.
	cniConfFile = "10-nodenet.conflist"
)

// fixture is the cluster every step runs in: a control plane, the nodes
// (three for TestRouting) registered as Nodes (with the pod CIDRs
// kube-controller-manager gave them), routerd prepared in each (TestRouting
// runs all of them), and (from the start step on) one pod per node.
type fixture struct {
	cp      *controlplane.ControlPlane
	admin   kubernetes.Interface
	topo    *netns.Topology
	nodes   []*netns.Node
	cidrs   []netip.Prefix // pod CIDR of each node, from its Node object
	routerd []*daemonproc.Daemon
	pods    []*netns.Pod // podI on nodeI
	// deleted are the nodes whose Node object is gone (node-deleted).
	deleted map[int]bool

	mu      sync.Mutex
	timings []string
}

// fixtureConfig shapes a fixture: TestRouting's is the zero value.
type fixtureConfig struct {
	// nodes is the number of nodes (0: nodeCount).
	nodes int
	// routerdArgs are more flags of every routerd.
	routerdArgs []string
}

// newFixture builds the control plane and the topology, registers the
// nodes and prepares routerd on each (not started). It skips t when not
// root or when the control plane binaries are not built.
func newFixture(t *testing.T) *fixture { return newFixtureWith(t, fixtureConfig{}) }

// newFixtureWith is newFixture shaped by c.
func newFixtureWith(t testing.TB, c fixtureConfig) *fixture {
	if c.nodes == 0 {
		c.nodes = nodeCount
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, routerd's routes and nftables table in each node): run as root: go test -tags kernel -v ./test/routing")
	}
	f := &fixture{deleted: map[int]bool{}}
	t.Cleanup(func() { t.Logf("timings:\n  %s", strings.Join(f.timings, "\n  ")) })

	// routerd builds while the control plane starts.
	phase := time.Now()
	var (
		bins   map[string]string
		binErr error
		wg     sync.WaitGroup
	)
	binDir := t.TempDir()
	wg.Go(func() { bins, binErr = binaries.Build(binDir, "routerd") })
	defer wg.Wait() // however the test ends, before binDir goes
	f.cp = controlplane.StartForTest(t)
	f.admin = f.cp.Admin
	wg.Wait()
	if binErr != nil {
		t.Fatalf("build routerd: %v", binErr)
	}
	f.timing("setup: control plane, and routerd built meanwhile", time.Since(phase))

	phase = time.Now()
	f.topo = netns.New(t, netns.Options{Nodes: c.nodes, NoCNIConfig: true})
	f.nodes = f.topo.Nodes()
	ctx, cancel := stepContext(t, apiTimeout)
	defer cancel()
	// One at a time, so that node i gets the i-th /24 as in the
	// topology's address plan; routerd takes it from the Node, and so does
	// every check here.
	for _, n := range f.nodes {
		if _, err := controlplane.CreateNode(ctx, f.admin, n.Name, n.IP); err != nil {
			t.Fatal(err)
		}
		cidrs, err := controlplane.WaitForPodCIDRs(ctx, f.admin, n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(cidrs) != 1 {
			t.Fatalf("node %s got pod CIDRs %v, want one IPv4 CIDR", n.Name, cidrs)
		}
		f.cidrs = append(f.cidrs, cidrs[0])
		t.Logf("%s: %s, pod CIDR %s (kube-controller-manager)", n.Name, n.IP, cidrs[0])
	}
	for _, n := range f.nodes {
		daemonproc.StartAPIRelay(t, n, f.cp.URL)
	}
	logDir := t.TempDir()
	for _, n := range f.nodes {
		f.routerd = append(f.routerd, daemonproc.New(t, daemonproc.Config{
			Daemon: "routerd", Bin: bins["routerd"], Node: n,
			Kubeconfig: f.cp.Kubeconfig(controlplane.Routerd),
			Args: append([]string{
				"--peers=", // routerd alone: the CNI config is written at once
				"--cni-conf-dir=" + n.CNIConfDir,
				"--ipam-data-dir=" + n.IPAMDir,
				"--tunnel=none", // one subnet: direct routes
			}, c.routerdArgs...),
			LogDir: logDir,
		}))
	}
	f.timing("setup: topology, nodes registered, relays", time.Since(phase))
	return f
}

// stepContext bounds the test's own calls by d. It outlives t.Context(),
// which is cancelled before t's cleanups run.
func stepContext(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(t.Context()), d)
}

// timing records how long a phase took, for the summary at the end.
func (f *fixture) timing(what string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.timings = append(f.timings, fmt.Sprintf("%-60s %v", what, d.Round(time.Millisecond)))
}

// live are the indexes of the nodes not deleted.
// watchRoutes watches routerd's route notifications in the nodes given
// by index.
func (f *fixture) watchRoutes(t testing.TB, idx []int) *netns.RouteWatch {
	t.Helper()
	var nodes []*netns.Node
	for _, i := range idx {
		nodes = append(nodes, f.nodes[i])
	}
	return netns.WatchRoutes(t, routeProtocol, nodes...)
}

func (f *fixture) live() []int {
	var out []int
	for i := range f.nodes {
		if !f.deleted[i] {
			out = append(out, i)
		}
	}
	return out
}
