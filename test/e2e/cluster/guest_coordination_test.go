//go:build e2eguest

package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/daemonproc"
	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
)

// absenceWindow is how long a check watches for something that must not
// happen (a node advertising what it must not, a CNI config written too
// early) once everything that would make it happen has happened
// elsewhere: the other nodes' routerd, doing the same work, did it
// within a fraction of it.
const absenceWindow = 2 * time.Second

// externalIP is the external IP of the traffic policy check's Service:
// inside 198.18.0.0/15, outside the underlay, the pod and Service CIDRs.
var externalIP = netip.MustParseAddr("198.18.64.10")

// testCoordination checks what the coordination API buys (DESIGN.md), as
// seen from outside the daemons: the BGP advertisements a router outside
// the cluster (BIRD in the world) receives, and the CNI config a kubelet
// would read.
func (c *cluster) testCoordination(t *testing.T) {
	const ns = "coord"
	c.createNamespace(t, ns)
	// BIRD sees the nodes: a session with each, and each one's pod CIDR
	// from it.
	c.bird.waitEstablished(t, c.nodes...)
	for _, n := range c.nodes {
		c.bird.waitAdvertisers(t, n.PodCIDR, n.Name)
	}
	t.Run("vip-only-once-programmed", func(t *testing.T) { c.testVIPOnceProgrammed(t, ns) })
	t.Run("etp-local-only-with-local-endpoints", func(t *testing.T) { c.testETPLocal(t, ns) })
	t.Run("cni-config-only-once-firewalld-in-force", func(t *testing.T) { c.testCNIAfterFirewalld(t, ns) })
}

// testVIPOnceProgrammed: with proxyd stopped on node0, a new Service's
// ClusterIP is advertised by node1 and node2, whose proxyd programmed it,
// and not by node0, whose routerd keeps the last VIPs proxyd published
// (which do not have it). Once proxyd is back and has programmed it, node0
// advertises it too, and serves it to a router that sends it there.
func (c *cluster) testVIPOnceProgrammed(t *testing.T, ns string) {
	app := map[string]string{"app": "late"}
	pods := c.createPods(t, ns, []podSpec{{name: "late-1", node: 1, labels: app, serve: true}})
	proxyd, routerd := c.daemons[0]["proxyd"], c.daemons[0]["routerd"]
	n0 := c.nodes[0]

	if err := proxyd.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// A failure in between leaves no node without its proxyd.
		if !proxyd.Running() {
			if err := proxyd.Start(); err != nil {
				t.Error(err)
			}
		}
	})
	// routerd saw proxyd go (it keeps proxyd's last facts).
	if _, err := routerd.WaitStatus(ctxFor(t, convergeTimeout), "proxyd disconnected", func(r daemonproc.Report) (bool, string) {
		connected, ok := peerConnected(r, "proxyd")
		return ok && !connected, fmt.Sprintf("proxyd known %v, connected %v", ok, connected)
	}); err != nil {
		t.Fatal(err)
	}

	svc := c.createService(t, ns, "late", "late", corev1.ServiceTypeClusterIP)
	prefix := hostPrefix(netip.MustParseAddr(svc.Spec.ClusterIP))
	begin := time.Now()
	c.bird.waitAdvertisers(t, prefix, "node1", "node2")
	t.Logf("%s (ClusterIP of %s/%s) advertised by node1 and node2 after %v, with proxyd stopped on node0",
		prefix, ns, svc.Name, time.Since(begin).Round(time.Millisecond))
	c.bird.holdAdvertisers(t, prefix, absenceWindow, "node1", "node2")
	if r, err := routerd.Status(ctxFor(t, opTimeout)); err != nil || !r.Serving() {
		t.Fatalf("routerd on node0 is not serving while proxyd is away: %+v, %v", r, err)
	}

	begin = time.Now()
	if err := proxyd.Start(); err != nil {
		t.Fatal(err)
	}
	c.bird.waitAdvertisers(t, prefix, "node0", "node1", "node2")
	t.Logf("proxyd started again on node0: node0 advertises %s after %v", prefix, time.Since(begin).Round(time.Millisecond))

	// Real traffic: the world sends the ClusterIP to node0, as a router
	// that learned it from node0 would; node0's IPVS serves it.
	c.viaRoute(t, prefix, n0.IP)
	a, err := reach(t.Context(), c.world.NetNS, netip.AddrPortFrom(prefix.Addr(), servicePort))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != pods["late-1"].Name {
		t.Errorf("the world to %s via node0: answered by %s, want late-1", prefix.Addr(), a.Name)
	}
	if _, err := proxyd.WaitReady(ctxFor(t, startTimeout)); err != nil {
		t.Fatal(err)
	}
}

// testETPLocal: a Service with externalTrafficPolicy Local and an external
// IP. Every node programs it and advertises its ClusterIP (the policy is
// not about cluster traffic), but only the nodes with a ready local
// endpoint advertise the external IP: node1 alone, then node2 as well once
// it has an endpoint, then node2 alone once node1's is no longer ready.
// The world, sending the external IP to node1, is answered by node1's pod
// with its own address kept.
func (c *cluster) testETPLocal(t *testing.T, ns string) {
	app := map[string]string{"app": "local"}
	pods := c.createPods(t, ns, []podSpec{{name: "local-1", node: 1, labels: app, serve: true}})
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "local"},
		Spec: corev1.ServiceSpec{
			Type:                  corev1.ServiceTypeClusterIP,
			Selector:              app,
			ExternalIPs:           []string{externalIP.String()},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports: []corev1.ServicePort{{Name: "echo", Port: servicePort, TargetPort: intstr.FromInt32(echoPort),
				Protocol: corev1.ProtocolTCP}},
		},
	}
	svc, err := c.admin.CoreV1().Services(ns).Create(ctxFor(t, opTimeout), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("service %s/local: %v", ns, err)
	}
	cip, eip := hostPrefix(netip.MustParseAddr(svc.Spec.ClusterIP)), hostPrefix(externalIP)

	// Every proxyd programmed the Service (the ClusterIP, advertised
	// from every node, comes in the same VIPs as the external IP).
	c.bird.waitAdvertisers(t, cip, "node0", "node1", "node2")
	c.bird.waitAdvertisers(t, eip, "node1")
	c.bird.holdAdvertisers(t, eip, absenceWindow, "node1")

	c.viaRoute(t, eip, c.nodes[1].IP)
	a, err := reach(t.Context(), c.world.NetNS, netip.AddrPortFrom(externalIP, servicePort))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != pods["local-1"].Name || a.Source.Addr() != c.world.IP {
		t.Errorf("the world to %s via node1: answered by %s, which saw %s; want local-1 seeing the world's %s (no masquerade)",
			externalIP, a.Name, a.Source.Addr(), c.world.IP)
	}

	begin := time.Now()
	c.createPods(t, ns, []podSpec{{name: "local-2", node: 2, labels: app, serve: true}})
	c.bird.waitAdvertisers(t, eip, "node1", "node2")
	t.Logf("an endpoint on node2: node2 advertises %s after %v", eip, time.Since(begin).Round(time.Millisecond))

	begin = time.Now()
	if _, err := controlplane.SetPodReady(ctxFor(t, opTimeout), c.admin, ns, "local-1", false); err != nil {
		t.Fatal(err)
	}
	c.bird.waitAdvertisers(t, eip, "node2")
	t.Logf("node1's endpoint not ready: node1 withdraws %s after %v", eip, time.Since(begin).Round(time.Millisecond))
	// The ClusterIP stays advertised everywhere.
	c.bird.waitAdvertisers(t, cip, "node0", "node1", "node2")
}

// testCNIAfterFirewalld: a node joins (its Node registered, its pod CIDR
// allocated), and routerd and proxyd start on it while firewalld does
// not: routerd runs (healthy, synced, proxyd connected, its pod CIDR
// advertised over BGP) but writes no CNI config, and says it waits for
// firewalld. Once firewalld runs, the config appears, and a pod created
// on the new node is reached from another node's pod, through routerd's
// IPIP tunnel (the new node is on a subnet of its own).
func (c *cluster) testCNIAfterFirewalld(t *testing.T, ns string) {
	n, ds := c.joiner, c.joinerDaemons
	conf := filepath.Join(n.CNIConfDir, cniConfFile)
	ctx := ctxFor(t, opTimeout)
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

	begin := time.Now()
	for _, name := range []string{"routerd", "proxyd"} {
		if err := ds[name].Start(); err != nil {
			t.Fatal(err)
		}
	}
	waiting := func(r daemonproc.Report) (bool, string) {
		w, _ := r.Status.Count("waitingForFirewalld")
		px, _ := peerConnected(r, "proxyd")
		return r.Serving() && r.Status.Syncs() > 0 && w == 1 && px,
			fmt.Sprintf("health %s, %d syncs, waitingForFirewalld %d, proxyd connected %v, last error %q",
				r.Health, r.Status.Syncs(), w, px, r.Status.Sync.LastError)
	}
	if _, err := ds["routerd"].WaitStatus(ctxFor(t, startTimeout), "healthy, proxyd connected, waiting for firewalld", waiting); err != nil {
		t.Fatal(err)
	}
	// Its BGP runs: the router outside has its pod CIDR.
	c.bird.waitAdvertisers(t, n.PodCIDR, n.Name)
	t.Logf("%s: routerd healthy, BGP up, waiting for firewalld after %v", n.Name, time.Since(begin).Round(time.Millisecond))
	noConfig := func() {
		t.Helper()
		if _, err := os.Stat(conf); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: %s exists (%v) while firewalld is not running", n.Name, conf, err)
		}
	}
	noConfig()
	windowStart := time.Now()
	harness.Eventually(t, absenceWindow+opTimeout, pollInterval, "the window", func() (bool, string) {
		noConfig()
		return time.Since(windowStart) > absenceWindow, ""
	})
	if _, err := ds["routerd"].WaitStatus(ctxFor(t, opTimeout), "still waiting for firewalld", waiting); err != nil {
		t.Fatal(err)
	}
	noConfig()
	t.Logf("%s: no CNI config %v after routerd and proxyd started, routerd waiting for firewalld", n.Name, time.Since(begin).Round(time.Millisecond))

	begin = time.Now()
	if err := ds["firewalld"].Start(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, startTimeout, pollInterval, n.Name+": routerd writes the CNI config once firewalld runs", func() (bool, string) {
		if !ds["firewalld"].Running() {
			t.Fatalf("firewalld on %s exited: %v", n.Name, ds["firewalld"].ExitError())
		}
		_, err := os.Stat(conf)
		return err == nil, fmt.Sprint(err)
	})
	t.Logf("%s: CNI config written %v after firewalld started", n.Name, time.Since(begin).Round(time.Millisecond))
	// firewalld has every policy of the cluster in force.
	c.mu.Lock()
	want := uint64(c.policies)
	c.mu.Unlock()
	if _, err := ds["firewalld"].WaitStatus(ctxFor(t, startTimeout), fmt.Sprintf("%d policies in force", want), func(r daemonproc.Report) (bool, string) {
		p, _ := r.Status.Count("policies")
		return r.Serving() && r.Status.Syncs() > 0 && p == want, fmt.Sprintf("health %s, %d syncs, %d policies", r.Health, r.Status.Syncs(), p)
	}); err != nil {
		t.Fatal(err)
	}
	if r, err := ds["routerd"].Status(ctxFor(t, opTimeout)); err != nil {
		t.Fatal(err)
	} else if w, _ := r.Status.Count("waitingForFirewalld"); w != 0 {
		t.Errorf("routerd on %s still counts waitingForFirewalld %d with the config written", n.Name, w)
	}

	// The node is one of the cluster's now.
	c.nodes = append(c.nodes, n)
	c.daemons = append(c.daemons, ds)
	idx := len(c.nodes) - 1
	pods := c.createPods(t, ns, []podSpec{
		{name: "joined", node: idx, serve: true},
		{name: "peer-0", node: 0},
	})
	a, err := reach(t.Context(), pods["peer-0"].NetNS, podAddr(pods["joined"]))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "joined" || a.Source.Addr() != pods["peer-0"].IP {
		t.Errorf("peer-0 to joined: answered by %s, which saw %s", a.Name, a.Source.Addr())
	}
	// The joiner is on a subnet of its own: the pods of the other nodes
	// and its own reach each other through routerd's IPIP tunnels (one
	// per node pair, both ways); the other nodes' pods, on one subnet,
	// directly.
	for _, from := range c.nodes {
		for _, to := range c.nodes {
			if from == to {
				continue
			}
			dev, err := routeDevice(from, to.PodCIDR.Addr().Next())
			want := "eth0"
			if from.Routed != to.Routed {
				want = "nnip-"
			}
			if err != nil || !strings.HasPrefix(dev, want) {
				t.Errorf("%s routes %s's pods through %q (%v), want %s…", from.Name, to.Name, dev, err, want)
			}
		}
	}
	c.checkRoutesExplained(t)
	ctx = ctxFor(t, startTimeout)
	for _, name := range daemonNames {
		if _, err := ds[name].WaitStatus(ctx, "ready, peers connected", readyWithPeers); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	for _, x := range c.nodes {
		names = append(names, x.Name)
	}
	t.Logf("%s joined: pods on it get network and are reached from node0's; the cluster is %s", n.Name, strings.Join(names, ", "))
}

// peerConnected says whether the daemon of r is connected to its peer
// daemon name, and whether it knows that peer at all.
func peerConnected(r daemonproc.Report, name string) (connected, known bool) {
	p, ok := findPeer(r, name)
	return p.Connected, ok
}

// viaRoute routes prefix in the world via a node, as a router that
// learned it from that node would, until t ends.
func (c *cluster) viaRoute(t *testing.T, prefix netip.Prefix, via netip.Addr) {
	t.Helper()
	if err := c.world.AddRoute(prefix, via); err != nil {
		t.Fatalf("world: route %s via %s: %v", prefix, via, err)
	}
	t.Cleanup(func() {
		if err := c.world.DelRoute(prefix); err != nil {
			t.Errorf("world: remove the route %s: %v", prefix, err)
		}
	})
}

// checkRoutesExplained checks that `routerd routes` on every node says
// what the kernel does (and the traffic above went through): each other
// node's pod CIDR routed, installed, through the link the kernel picks,
// over IPIP exactly when that link is a tunnel; and the node's own pod
// CIDR advertised with its address as next hop.
func (c *cluster) checkRoutesExplained(t *testing.T) {
	t.Helper()
	for i, from := range c.nodes {
		var resp nodev1.RouterServiceRoutesResponse
		if err := c.daemons[i]["routerd"].Query(ctxFor(t, opTimeout), &resp, "routes"); err != nil {
			t.Fatal(err)
		}
		byPrefix := map[string]*nodev1.LearnedRoute{}
		for _, l := range resp.GetLearned() {
			byPrefix[l.GetPrefix()] = l
		}
		for _, to := range c.nodes {
			if from == to {
				continue
			}
			dev, err := routeDevice(from, to.PodCIDR.Addr().Next())
			if err != nil {
				t.Fatal(err)
			}
			l := byPrefix[to.PodCIDR.String()]
			wantVia := "direct"
			if strings.HasPrefix(dev, "nnip-") {
				wantVia = "ipip"
			}
			if l == nil || l.GetReason().GetCode() != "Routed" || !l.GetInstalled() || l.GetLink() != dev || l.GetVia() != wantVia || l.GetPeer() != to.Name {
				t.Errorf("%s: routerd routes says of %s's pods %v; the kernel routes them through %s (%s), from peer %s", from.Name, to.Name, l, dev, wantVia, to.Name)
			}
		}
		advertised := false
		for _, a := range resp.GetAdvertised() {
			advertised = advertised || (a.GetPrefix() == from.PodCIDR.String() && a.GetNextHop() == from.IP.String())
		}
		if !advertised {
			t.Errorf("%s: routerd routes does not advertise its pod CIDR %s with next hop %s: %v", from.Name, from.PodCIDR, from.IP, resp.GetAdvertised())
		}
	}
	t.Logf("routerd routes on %d nodes names the links the kernel routes the other nodes' pods through", len(c.nodes))
}

// routeDevice is the link node n sends a packet to dst through.
func routeDevice(n *netns.Node, dst netip.Addr) (string, error) {
	rs, err := n.Netlink().RouteGet(dst.AsSlice())
	if err != nil {
		return "", err
	}
	if len(rs) == 0 {
		return "", fmt.Errorf("no route to %s", dst)
	}
	l, err := n.Netlink().LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return "", err
	}
	return l.Attrs().Name, nil
}

// hostPrefix is a's /32 (or /128).
func hostPrefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
