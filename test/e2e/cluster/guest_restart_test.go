//go:build e2eguest

package cluster

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodenet/nodenet/test/daemonproc"
	"github.com/nodenet/nodenet/test/netns"
)

// routeProtocol is routerd's default --route-protocol.
const routeProtocol = 196

// testRestart: while long-lived connections run (pod to pod across nodes,
// pod to pod through an IPIP tunnel to the routed node, pod to a Service)
// and a pod that policy denies keeps trying to connect, every daemon of
// every node is killed (SIGKILL) and started again, one at a time, and
// then two daemons are upgraded (SIGTERM, and a build of another version
// started in their place, talking to peers of the old version through
// the coordination API). No connection breaks, no denied connection
// passes, and no route of routerd's changes on any node.
func (c *cluster) testRestart(t *testing.T) {
	const ns = "restart"
	c.createNamespace(t, ns)
	srv := map[string]string{"app": "srv"}
	client := map[string]string{"role": "client"}
	routed := len(c.nodes) - 1 // the joiner of scenario 3, on its own subnet
	if !c.nodes[routed].Routed {
		t.Fatalf("%s is not on the routed subnet: scenario 3 must have run", c.nodes[routed].Name)
	}
	pods := c.createPods(t, ns, []podSpec{
		{name: "srv-0", node: 0, labels: srv, serve: true},
		{name: "srv-1", node: 1, labels: srv, serve: true},
		{name: "cli-2", node: 2, labels: client},
		{name: "cli-r", node: routed, labels: client},
		{name: "intruder", node: 2},
	})
	svc := c.createService(t, ns, "srv", "srv", corev1.ServiceTypeClusterIP)
	c.createPolicy(t, ns, "srv-clients-only", srv, client)
	cli, clr, intruder := pods["cli-2"], pods["cli-r"], pods["intruder"]
	waitAllBackends(t, cli.NetNS, vip(svc), []*netns.Pod{pods["srv-0"], pods["srv-1"]})
	expectBlocked(t, intruder.NetNS, podAddr(pods["srv-1"]), vip(svc))
	if t.Failed() {
		t.FailNow()
	}

	keepers := []*keeper{
		keep(t, "pod to pod (node2 → node1)", cli.NetNS, podAddr(pods["srv-1"])),
		keep(t, fmt.Sprintf("pod to pod over IPIP (%s → node0)", clr.Node.Name), clr.NetNS, podAddr(pods["srv-0"])),
		keep(t, "pod to Service (node2's IPVS)", cli.NetNS, vip(svc)),
		keep(t, fmt.Sprintf("pod to Service (%s's IPVS, over IPIP)", clr.Node.Name), clr.NetNS, vip(svc)),
	}
	checkAll := func(after string) {
		t.Helper()
		for _, k := range keepers {
			k.check(t, after)
		}
	}
	routes := netns.WatchRoutes(t, routeProtocol, c.nodes...)
	denied := probe(t, intruder.NetNS, podAddr(pods["srv-1"]), vip(svc))
	begin := time.Now()

	var took []string
	for i, n := range c.nodes {
		for _, name := range daemonNames {
			d := c.daemons[i][name]
			start := time.Now()
			d.Kill()
			if err := d.Start(); err != nil {
				t.Fatal(err)
			}
			c.waitBack(t, d)
			checkAll(fmt.Sprintf("after %s on %s was killed and started again", name, n.Name))
			took = append(took, fmt.Sprintf("%s/%s %v", n.Name, name, time.Since(start).Round(time.Millisecond)))
		}
	}
	t.Logf("kill -9 and start again, each back in sync after: %s", strings.Join(took, ", "))

	// The upgrade, as a rolling update does it: SIGTERM, the new binary.
	c.upgrade(t, 1, "routerd")
	checkAll("after routerd on node1 was upgraded")
	c.upgrade(t, 2, "proxyd")
	checkAll("after proxyd on node2 was upgraded")

	attempts, passed := denied.result()
	for _, p := range passed {
		t.Errorf("denied traffic passed: %s", p)
	}
	if attempts == 0 {
		t.Error("the denied pod made no attempt")
	}
	if events := routes.Stop(t, convergeTimeout); len(events) > 0 {
		var b strings.Builder
		for _, e := range events {
			fmt.Fprintf(&b, "\n  %s", e)
		}
		t.Errorf("%d changes of routerd's routes during the restarts, want none:%s", len(events), b.String())
	}
	checkAll("at the end")
	var answers []string
	for _, k := range keepers {
		k.close()
		answers = append(answers, fmt.Sprintf("%s: %d", k.what, k.answers()))
	}
	t.Logf("over %v: connections never broke (answers %s); the denied pod's %d attempts all dropped; 0 route changes on %d nodes",
		time.Since(begin).Round(time.Millisecond), strings.Join(answers, ", "), attempts, len(c.nodes))
}

// waitBack waits until a restarted daemon is ready with its peers, and
// for routerd until its BGP sessions are established again with
// End-of-RIB received: back in sync, not merely started.
func (c *cluster) waitBack(t *testing.T, d *daemonproc.Daemon) {
	t.Helper()
	if _, err := d.WaitStatus(ctxFor(t, startTimeout), "ready, peers connected", readyWithPeers); err != nil {
		t.Fatal(err)
	}
	if d.Name() != "routerd" {
		return
	}
	// The other nodes and BIRD.
	want := len(c.nodes)
	if _, err := d.WaitStatus(ctxFor(t, startTimeout), "BGP in sync", func(r daemonproc.Report) (bool, string) {
		in := 0
		var states []string
		for _, p := range r.Status.BGPPeers {
			states = append(states, fmt.Sprintf("%s %s eor=%v", p.Address, p.State, p.EndOfRIB))
			if p.Established() && p.EndOfRIB {
				in++
			}
		}
		return in == want && !r.Status.Sync.Pending, strings.Join(states, "; ")
	}); err != nil {
		t.Fatal(err)
	}
}

// upgrade replaces daemon name of node i with its build of upgradeVersion
// (the host half's), and checks the new one runs with its peers of the
// old version: each side connected to the other, the peers holding facts
// of the new process.
func (c *cluster) upgrade(t *testing.T, i int, name string) {
	t.Helper()
	bin := os.Getenv(envUpgradeBinPrefix + strings.ToUpper(name))
	if bin == "" {
		t.Fatalf("no upgrade build of %s (%s%s): the host half builds it", name, envUpgradeBinPrefix, strings.ToUpper(name))
	}
	d, n := c.daemons[i][name], c.nodes[i]
	before := map[string]string{} // the peers' view of d: incarnation
	for _, p := range c.daemons[i] {
		if p != d {
			before[p.Name()] = c.peerView(t, p, name).Incarnation
		}
	}
	start := time.Now()
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	_, args := d.Binary()
	d.Use(bin, args)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	c.waitBack(t, d)
	r, err := d.Status(ctxFor(t, opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status.Build.Version != upgradeVersion {
		t.Fatalf("%s on %s runs version %q after the upgrade, want %q", name, n.Name, r.Status.Build.Version, upgradeVersion)
	}
	for _, p := range c.daemons[i] {
		if p == d {
			continue
		}
		old := before[p.Name()]
		if _, err := p.WaitStatus(ctxFor(t, convergeTimeout), "facts of the upgraded "+name, func(r daemonproc.Report) (bool, string) {
			v, ok := findPeer(r, name)
			return ok && v.Connected && v.Incarnation != "" && v.Incarnation != old,
				fmt.Sprintf("peer %s: %+v (incarnation before the upgrade %q)", name, v, old)
		}); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s on %s upgraded to %s in %v; its peers of the old version exchange facts with it", name, n.Name, upgradeVersion, time.Since(start).Round(time.Millisecond))
}

// peerView is what daemon d's status says of its peer name.
func (c *cluster) peerView(t *testing.T, d *daemonproc.Daemon, name string) daemonproc.PeerStatus {
	t.Helper()
	r, err := d.Status(ctxFor(t, opTimeout))
	if err != nil {
		t.Fatal(err)
	}
	v, ok := findPeer(r, name)
	if !ok {
		t.Fatalf("%s on %s does not watch %s", d.Name(), d.Node().Name, name)
	}
	return v
}

func findPeer(r daemonproc.Report, name string) (daemonproc.PeerStatus, bool) {
	for _, p := range r.Status.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return daemonproc.PeerStatus{}, false
}
