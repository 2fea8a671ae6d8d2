//go:build e2eguest

package cluster

import (
	"bufio"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
)

// testDemo is the seed's demo: pods on different nodes reach each other;
// a ClusterIP Service answers round robin from its pods on the three
// nodes; its NodePort answers from the world; a default-deny ingress
// policy blocks a client, then a policy allowing labelled clients lets the
// labelled one in and keeps the other out.
func (c *cluster) testDemo(t *testing.T) {
	const ns = "demo"
	c.createNamespace(t, ns)
	web := map[string]string{"app": "web"}
	client := map[string]string{"role": "client"}
	pods := c.createPods(t, ns, []podSpec{
		{name: "web-0", node: 0, labels: web, serve: true},
		{name: "web-1", node: 1, labels: web, serve: true},
		{name: "web-2", node: 2, labels: web, serve: true},
		{name: "client-a", node: 0, labels: client},
		{name: "client-b", node: 0},
	})
	backends := []*netns.Pod{pods["web-0"], pods["web-1"], pods["web-2"]}
	svc := c.createService(t, ns, "web", "web", corev1.ServiceTypeClusterIP)
	np := c.createService(t, ns, "web-np", "web", corev1.ServiceTypeNodePort)

	t.Run("pod-to-pod", func(t *testing.T) {
		// Every pod reaches every other node's pod directly, over the
		// routes routerd learned over BGP, and is seen with its own
		// address (nothing NATs pod to pod).
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs, seen []string
		for _, from := range backends {
			for _, to := range backends {
				if from == to {
					continue
				}
				wg.Go(func() {
					a, err := reach(t.Context(), from.NetNS, podAddr(to))
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err != nil:
						errs = append(errs, err.Error())
					case a.Name != to.Name || a.Source.Addr() != from.IP:
						errs = append(errs, fmt.Sprintf("%s to %s: answered by %s, which saw source %s; want %s seeing %s",
							from.Name, to.Name, a.Name, a.Source.Addr(), to.Name, from.IP))
					default:
						seen = append(seen, from.Name+"→"+to.Name)
					}
				})
			}
		}
		wg.Wait()
		slices.Sort(seen)
		t.Logf("answered: %s", strings.Join(seen, " "))
		for _, e := range errs {
			t.Error(e)
		}
	})

	t.Run("clusterip-round-robin", func(t *testing.T) {
		ca := pods["client-a"]
		// Once node0's proxyd has the three real servers, new connections
		// go round robin: each backend in turn.
		waitAllBackends(t, ca.NetNS, vip(svc), backends)
		var got []string
		for range 2 * len(backends) {
			a := dial(t, ca.NetNS, vip(svc))
			got = append(got, a.Name)
			// A backend on another node sees the client; the one on the
			// client's node sees the bridge (proxyd masquerades the
			// hairpin, or it would answer the client directly).
			want := ca.IP
			if p := pods[a.Name]; p != nil && p.Node == ca.Node {
				want = ca.Node.Gateway
			}
			if a.Source.Addr() != want {
				t.Errorf("%s saw source %s, want %s", a.Name, a.Source.Addr(), want)
			}
		}
		t.Logf("%s: backends in connection order: %v", vip(svc), got)
		first := got[:len(backends)]
		if s := slices.Sorted(slices.Values(first)); !slices.Equal(s, []string{"web-0", "web-1", "web-2"}) {
			t.Fatalf("the first %d connections went to %v, want each backend once", len(backends), first)
		}
		for i := len(backends); i < len(got); i++ {
			if got[i] != got[i-len(backends)] {
				t.Fatalf("connections went to %v: not round robin", got)
			}
		}
	})

	t.Run("nodeport", func(t *testing.T) {
		// From outside the nodes (the world namespace on the underlay):
		// node1's NodePort reaches every backend, masqueraded
		// (externalTrafficPolicy Cluster); every node's answers.
		port := uint16(np.Spec.Ports[0].NodePort)
		world := c.world
		n1 := netip.AddrPortFrom(c.nodes[1].IP, port)
		waitAllBackends(t, world.NetNS, n1, backends)
		for _, n := range c.nodes {
			addr := netip.AddrPortFrom(n.IP, port)
			a, err := reach(t.Context(), world.NetNS, addr)
			if err != nil {
				t.Fatal(err)
			}
			if a.Source.Addr() == world.IP {
				t.Errorf("NodePort %s: %s saw the world's own address %s, want it masqueraded", addr, a.Name, world.IP)
			}
			t.Logf("NodePort %s: answered by %s, which saw %s", addr, a.Name, a.Source.Addr())
		}
	})

	t.Run("policy", func(t *testing.T) {
		ca, cb := pods["client-a"], pods["client-b"]
		targets := func() []netip.AddrPort {
			var addrs []netip.AddrPort
			for _, b := range backends {
				addrs = append(addrs, podAddr(b))
			}
			// Three connections through the ClusterIP: round robin sends
			// them to three backends.
			return append(addrs, vip(svc), vip(svc), vip(svc))
		}()
		// Before any policy both clients get in.
		for _, cl := range []*netns.Pod{ca, cb} {
			for _, b := range backends {
				if _, err := reach(t.Context(), cl.NetNS, podAddr(b)); err != nil {
					t.Fatal(err)
				}
			}
		}

		c.createPolicy(t, ns, "default-deny", nil, nil)
		expectBlocked(t, ca.NetNS, targets...)
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("default-deny: %s gets no answer from the pods or the ClusterIP", ca.Name)

		c.createPolicy(t, ns, "allow-clients", web, client)
		for _, b := range backends {
			a, err := reach(t.Context(), ca.NetNS, podAddr(b))
			if err != nil {
				t.Fatal(err)
			}
			if a.Name != b.Name {
				t.Errorf("%s to %s: answered by %s", ca.Name, b.Name, a.Name)
			}
		}
		seen := map[string]bool{}
		for range backends {
			seen[dial(t, ca.NetNS, vip(svc)).Name] = true
		}
		if len(seen) != len(backends) {
			t.Errorf("%s through %s: answered by %v, want every backend", ca.Name, vip(svc), seen)
		}
		expectBlocked(t, cb.NetNS, targets...)
		t.Logf("allow-clients: %s (role=client) reaches every backend, %s (unlabelled) none", ca.Name, cb.Name)
	})
}

// testSameNode: a client pod reaches a Service whose only backend is on
// its own node, so the packet never leaves the node: IPVS translates it
// and hands it to the bridge, and firewalld polices it there (the output
// hook sees the backend as destination, the client as source, before
// proxyd's hairpin masquerade). The policy admits the labelled client and
// drops the other, counting the drops against it.
func (c *cluster) testSameNode(t *testing.T) {
	const ns, policy = "samenode", "solo-allow-clients"
	c.createNamespace(t, ns)
	solo := map[string]string{"app": "solo"}
	client := map[string]string{"role": "client"}
	pods := c.createPods(t, ns, []podSpec{
		{name: "solo", node: 0, labels: solo, serve: true},
		{name: "near-a", node: 0, labels: client},
		{name: "near-b", node: 0},
	})
	svc := c.createService(t, ns, "solo", "solo", corev1.ServiceTypeClusterIP)
	backend, na, nb := pods["solo"], pods["near-a"], pods["near-b"]
	n0 := c.nodes[0]

	// Without a policy both clients get in, through IPVS on node0: the
	// backend sees the bridge's address (the hairpin masquerade), which
	// only a service-proxied connection gets.
	for _, cl := range []*netns.Pod{na, nb} {
		a, err := reach(t.Context(), cl.NetNS, vip(svc))
		if err != nil {
			t.Fatal(err)
		}
		if a.Name != backend.Name || a.Source.Addr() != n0.Gateway {
			t.Fatalf("%s to %s: answered by %s seeing %s, want %s seeing node0's bridge %s", cl.Name, vip(svc), a.Name, a.Source.Addr(), backend.Name, n0.Gateway)
		}
	}
	dropsBefore := c.policyDrops(t, 0, ns, policy)
	c.createPolicy(t, ns, policy, solo, client)
	a, err := reach(t.Context(), na.NetNS, vip(svc))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != backend.Name || a.Source.Addr() != n0.Gateway {
		t.Fatalf("%s to %s: answered by %s seeing %s, want %s seeing %s", na.Name, vip(svc), a.Name, a.Source.Addr(), backend.Name, n0.Gateway)
	}
	expectBlocked(t, nb.NetNS, vip(svc), vip(svc))
	// The drops are the policy's (firewalld counts them per policy), not
	// anything else's on the way.
	if after := c.policyDrops(t, 0, ns, policy); after <= dropsBefore {
		t.Errorf("firewalld on node0 counts %g drops for %s/%s (%g before): the blocked connections were not its", after, ns, policy, dropsBefore)
	} else {
		t.Logf("%s reaches %s through %s; %s is dropped by %s/%s (firewalld on node0 counts %g packets)", na.Name, backend.Name, vip(svc), nb.Name, ns, policy, after-dropsBefore)
	}
	// The labelled client still gets in after the other was dropped.
	if a := dial(t, na.NetNS, vip(svc)); a.Name != backend.Name {
		t.Errorf("%s to %s: answered by %s", na.Name, vip(svc), a.Name)
	}
}

// waitAllBackends waits until connections from ns to addr (a Service) have
// been answered by every backend: the proxy of ns's node has them all.
func waitAllBackends(t *testing.T, ns *netns.NetNS, addr netip.AddrPort, backends []*netns.Pod) {
	t.Helper()
	seen := map[string]bool{}
	harness.Eventually(t, convergeTimeout, pollInterval, fmt.Sprintf("%s: every backend answers through %s", ns.Name, addr), func() (bool, string) {
		a, err := reach(t.Context(), ns, addr)
		if err != nil {
			return false, err.Error()
		}
		seen[a.Name] = true
		for _, b := range backends {
			if !seen[b.Name] {
				return false, fmt.Sprintf("answered so far by %v", seen)
			}
		}
		return true, ""
	})
}

// policyDrops is firewalld_policy_drops_total of a policy (ingress) on
// node i, from firewalld's /metrics.
func (c *cluster) policyDrops(t *testing.T, i int, namespace, policy string) float64 {
	t.Helper()
	resp, err := c.nodes[i].HTTPClient(opTimeout).Get("http://" + firewalldMetrics + "/metrics")
	if err != nil {
		t.Fatalf("firewalld's metrics on %s: %v", c.nodes[i].Name, err)
	}
	defer resp.Body.Close()
	series := fmt.Sprintf(`firewalld_policy_drops_total{direction="ingress",namespace=%q,policy=%q} `, namespace, policy)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s%s: %v", series, v, err)
			}
			return n
		}
	}
	return 0
}
