//go:build e2eguest

package cluster

import (
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
)

// TestDemoGuest is make demo's guest half (host_demo_test.go): the
// cluster of the e2e test, with the seed blog's lab (kube-router's pod
// networking with BGP, IPVS service proxy, network policies) built on it
// and shown step by step on stdout, the way a user would look at it. Each
// step checks what it shows first: a demo that does not work fails here
// rather than printing something untrue. Once shown, it prints
// harness.DemoShown and, in DemoHold mode, keeps the cluster up until the
// host kills the VM.
func TestDemoGuest(t *testing.T) {
	harness.SkipUnlessDemo(t, "TestDemo")
	d := &demo{w: os.Stdout}
	fmt.Fprintln(d.w, "\nnodenet demo: building the cluster: 3 nodes, each running routerd, proxyd and firewalld (about a minute)")
	d.c = newCluster(t)

	d.showNodes(t)
	d.createWorkload(t)
	d.showBGPRoutes(t)
	d.showPodToPod(t)
	d.showRouterdStatus(t)
	d.showIPVS(t)
	d.showRoundRobin(t)
	d.showNodePort(t)
	d.showPolicies(t)

	fmt.Fprintf(d.w, "\n%s\n", harness.DemoShown)
	if harness.DemoHolds() {
		d.hold(t)
	}
}

// demoNamespace holds the demo's pods, Service and policies.
const demoNamespace = "demo"

// holdCheckInterval paces the check, while the demo holds, that every
// daemon still runs.
const holdCheckInterval = 5 * time.Second

// demo is what the steps share: the cluster and what they created on it.
type demo struct {
	c        *cluster
	w        io.Writer
	step     int
	pods     map[string]*netns.Pod
	backends []*netns.Pod
	svc      *corev1.Service
}

// title starts the next step with its title and what it is about.
func (d *demo) title(title string, about ...string) {
	d.step++
	fmt.Fprintf(d.w, "\n## %d. %s\n", d.step, title)
	for _, l := range about {
		fmt.Fprintln(d.w, l)
	}
}

// table prints rows (the first is the header) in aligned columns.
func (d *demo) table(rows ...[]string) {
	tw := tabwriter.NewWriter(d.w, 0, 8, 3, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush()
}

// showNodes prints the Nodes as the API has them, after checking they are
// the topology's: the addresses and pod CIDRs every later step uses.
func (d *demo) showNodes(t *testing.T) {
	d.title("The nodes",
		"Each node is a network namespace on one underlay (198.18.0.0/24). kube-controller-manager gave",
		"each its pod CIDR; routerd on the node announces it over BGP. The world namespace (198.18.0.1)",
		fmt.Sprintf("plays the network outside the cluster: BIRD there (AS %d) peers with every node (AS %d).", worldASN, nodeASN))
	list, err := d.c.admin.CoreV1().Nodes().List(ctxFor(t, opTimeout), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]corev1.Node{}
	for _, n := range list.Items {
		byName[n.Name] = n
	}
	rows := [][]string{{"NAME", "INTERNAL-IP", "POD-CIDR", "DAEMONS"}}
	for _, n := range d.c.nodes {
		obj, ok := byName[n.Name]
		if !ok {
			t.Fatalf("node %s is not registered", n.Name)
		}
		var ip string
		for _, a := range obj.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				ip = a.Address
			}
		}
		if ip != n.IP.String() || obj.Spec.PodCIDR != n.PodCIDR.String() {
			t.Fatalf("node %s: the API has internal IP %q and pod CIDR %q, the topology %s and %s", n.Name, ip, obj.Spec.PodCIDR, n.IP, n.PodCIDR)
		}
		rows = append(rows, []string{n.Name, ip, obj.Spec.PodCIDR, strings.Join(daemonNames, ", ")})
	}
	d.table(rows...)
}

// createWorkload creates the lab's pods and Service and prints them: a web
// pod on every node behind Service web, and two clients on node0, one
// labelled role=client.
func (d *demo) createWorkload(t *testing.T) {
	d.title("Pods and a Service",
		"Pods are network namespaces attached to their node's bridge by the CNI plugins, with the config",
		"routerd wrote; each web pod serves an echo on :8080 that answers its name and the source it saw.")
	d.c.createNamespace(t, demoNamespace)
	web := map[string]string{"app": "web"}
	d.pods = d.c.createPods(t, demoNamespace, []podSpec{
		{name: "web-0", node: 0, labels: web, serve: true},
		{name: "web-1", node: 1, labels: web, serve: true},
		{name: "web-2", node: 2, labels: web, serve: true},
		{name: "client-a", node: 0, labels: map[string]string{"role": "client"}},
		{name: "client-b", node: 0},
	})
	d.backends = []*netns.Pod{d.pods["web-0"], d.pods["web-1"], d.pods["web-2"]}
	// A NodePort Service has a ClusterIP too: one Service shows both.
	d.svc = d.c.createService(t, demoNamespace, "web", "web", corev1.ServiceTypeNodePort)

	rows := [][]string{{"NAMESPACE", "POD", "NODE", "IP", "LABELS"}}
	for _, name := range slices.Sorted(maps.Keys(d.pods)) {
		p := d.pods[name]
		obj, err := d.c.admin.CoreV1().Pods(demoNamespace).Get(ctxFor(t, opTimeout), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if obj.Status.PodIP != p.IP.String() || obj.Spec.NodeName != p.Node.Name {
			t.Fatalf("pod %s: the API has %s on %s, the pod is %s on %s", name, obj.Status.PodIP, obj.Spec.NodeName, p.IP, p.Node.Name)
		}
		rows = append(rows, []string{demoNamespace, name, p.Node.Name, p.IP.String(), labels(obj.Labels)})
	}
	d.table(rows...)
	fmt.Fprintln(d.w)
	port := d.svc.Spec.Ports[0]
	d.table([]string{"NAMESPACE", "SERVICE", "TYPE", "CLUSTER-IP", "PORT(S)", "SELECTOR"},
		[]string{demoNamespace, d.svc.Name, string(d.svc.Spec.Type), d.svc.Spec.ClusterIP,
			fmt.Sprintf("%d:%d/%s → %d", port.Port, port.NodePort, port.Protocol, echoPort), labels(d.svc.Spec.Selector)})
}

// labels is k=v,k=v, sorted, or <none>.
func labels(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		kv = append(kv, k+"="+m[k])
	}
	return strings.Join(kv, ",")
}

// showPodToPod connects client-a on node0 to the web pods of the other
// nodes directly: over the routes of the previous step, nothing NATed.
func (d *demo) showPodToPod(t *testing.T) {
	d.title("Pod to pod across nodes",
		"client-a (node0) connects to the web pods of node1 and node2 at their own addresses: the packets",
		"follow the routes learned over BGP, and the server sees client-a's own address (no NAT).")
	ca := d.pods["client-a"]
	for _, to := range d.backends[1:] {
		a, err := reach(t.Context(), ca.NetNS, podAddr(to))
		if err != nil {
			t.Fatal(err)
		}
		if a.Name != to.Name || a.Source.Addr() != ca.IP {
			t.Fatalf("%s to %s: answered by %s, which saw %s; want %s seeing %s", ca.Name, to.Name, a.Name, a.Source.Addr(), to.Name, ca.IP)
		}
		fmt.Fprintf(d.w, "%s → %s (%s on %s): answered by %s, which saw the client as %s\n",
			ca.Name, podAddr(to), to.Name, to.Node.Name, a.Name, a.Source.Addr())
	}
}

// showRoundRobin makes new connections from client-a to the ClusterIP and
// prints who answered: each web pod in turn.
func (d *demo) showRoundRobin(t *testing.T) {
	ca := d.pods["client-a"]
	d.title("ClusterIP, round robin",
		fmt.Sprintf("Six new connections from client-a to %s: IPVS on node0 sends each to the next web pod.", vip(d.svc)))
	// Until node0's proxyd has all three real servers, rr cycles over
	// fewer: wait for each to have answered once.
	waitAllBackends(t, ca.NetNS, vip(d.svc), d.backends)
	var got []string
	for range 2 * len(d.backends) {
		a := dial(t, ca.NetNS, vip(d.svc))
		p := d.pods[a.Name]
		if p == nil {
			t.Fatalf("%s answered by %s, not a web pod", vip(d.svc), a.Name)
		}
		got = append(got, a.Name)
		fmt.Fprintf(d.w, "%s → %s: answered by %s (%s on %s)\n", ca.Name, vip(d.svc), a.Name, p.IP, p.Node.Name)
	}
	first := got[:len(d.backends)]
	if s := slices.Sorted(slices.Values(first)); !slices.Equal(s, []string{"web-0", "web-1", "web-2"}) {
		t.Fatalf("the first %d connections went to %v, want each web pod once", len(d.backends), first)
	}
	for i := len(d.backends); i < len(got); i++ {
		if got[i] != got[i-len(d.backends)] {
			t.Fatalf("connections went to %v: not round robin", got)
		}
	}
}

// showNodePort connects from the world to the Service's NodePort on every
// node.
func (d *demo) showNodePort(t *testing.T) {
	port := uint16(d.svc.Spec.Ports[0].NodePort)
	world := d.c.world
	d.title("NodePort from outside the cluster",
		fmt.Sprintf("From the world namespace (%s) to port %d of every node: any node forwards to any web pod,", world.IP, port),
		"masquerading the client (externalTrafficPolicy: Cluster), so the answer comes back the same way.")
	waitAllBackends(t, world.NetNS, netip.AddrPortFrom(d.c.nodes[0].IP, port), d.backends)
	for _, n := range d.c.nodes {
		addr := netip.AddrPortFrom(n.IP, port)
		a, err := reach(t.Context(), world.NetNS, addr)
		if err != nil {
			t.Fatal(err)
		}
		if a.Source.Addr() == world.IP {
			t.Fatalf("NodePort %s: %s saw the world's own address %s, want it masqueraded", addr, a.Name, world.IP)
		}
		fmt.Fprintf(d.w, "world → %s (%s): answered by %s, which saw the client as %s\n", addr, n.Name, a.Name, a.Source.Addr())
	}
}

// hold keeps the cluster up until the host kills the VM (Ctrl-C there),
// checking now and then that no daemon died: a demo left running broken
// says so, and ends.
func (d *demo) hold(t *testing.T) {
	tick := time.NewTicker(holdCheckInterval)
	defer tick.Stop()
	for range tick.C {
		for i, ds := range d.c.daemons {
			for _, name := range daemonNames {
				if dm := ds[name]; !dm.Running() {
					t.Fatalf("%s on %s exited: %v\n%s", name, d.c.nodes[i].Name, dm.ExitError(), dm.Logs(16<<10))
				}
			}
		}
	}
}
