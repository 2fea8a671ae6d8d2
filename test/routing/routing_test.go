//go:build kernel

package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/test/netns"
)

// TestRouting builds the cluster once and runs the steps in order (see
// the package comment); each step needs the ones before it.
func TestRouting(t *testing.T) {
	f := newFixture(t)
	for _, s := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"start", f.testStart},
		{"pod-to-pod", f.testPodToPod},
		{"masquerade", f.testMasquerade},
		{"restart", f.testRestart},
		{"node-deleted", f.testNodeDeleted},
	} {
		if !t.Run(s.name, s.run) {
			t.Fatalf("step %s failed: the steps after it need it", s.name)
		}
	}
}

// testStart starts routerd on every node and checks what it sets up: the
// CNI config (pods start with it), the BGP sessions, the routes.
func (f *fixture) testStart(t *testing.T) {
	for _, n := range f.nodes {
		if files, _ := filepath.Glob(filepath.Join(n.CNIConfDir, "*")); len(files) > 0 {
			t.Fatalf("%s: CNI config dir not empty before routerd started: %v", n.Name, files)
		}
	}
	ctx, cancel := stepContext(t, startTimeout)
	defer cancel()
	begin := time.Now()
	for _, r := range f.routerd {
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range f.routerd {
		if _, err := r.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.timing("start: every routerd healthy, first sync done", time.Since(begin))

	// The CNI config, written at once (no firewalld to wait for).
	for i, n := range f.nodes {
		path := filepath.Join(n.CNIConfDir, cniConfFile)
		netnstest.WaitFor(t, startTimeout, pollInterval, n.Name+": routerd's CNI config", func() (bool, string) {
			_, err := os.Stat(path)
			return err == nil, fmt.Sprint(err)
		})
		f.checkCNIConfig(t, i, path)
	}
	f.timing("start: CNI config in every node", time.Since(begin))

	// A pod on each node, attached by the CNI plugins with routerd's
	// config, serving the echo.
	var g errgroup.Group
	f.pods = make([]*netns.Pod, len(f.nodes))
	for i, n := range f.nodes {
		g.Go(func() error {
			p, err := f.topo.CreatePod(ctx, n, fmt.Sprintf("pod%d", i))
			if err != nil {
				return err
			}
			f.pods[i] = p
			if !f.cidrs[i].Contains(p.IP) {
				return fmt.Errorf("pod %s on %s got %s, outside the Node's pod CIDR %s", p.Name, n.Name, p.IP, f.cidrs[i])
			}
			t.Logf("pod %s on %s: %s", p.Name, n.Name, p.IP)
			return p.ServeTCP(echoPort)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := f.topo.World().ServeTCP(echoPort); err != nil {
		t.Fatal(err)
	}

	d := f.waitRoutes(t, startTimeout, "every node's routes to the other nodes' pod CIDRs")
	f.timing("start: every route in every node (from routerd start)", time.Since(begin))
	t.Logf("routes in every node %v after routerd started (%v after the pods were up)", time.Since(begin).Round(time.Millisecond), d.Round(time.Millisecond))
	for i, n := range f.nodes {
		t.Logf("%s: %s", n.Name, strings.Join(f.expectedRoutes(i), "; "))
	}

	f.waitBGPInSync(t, ctx, "BGP sessions of every node established")
	f.timing("start: every BGP session established with End-of-RIB", time.Since(begin))
	for i, r := range f.routerd {
		rep, err := r.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"peers", "established", "routes"} {
			if n, _ := rep.Status.Count(c); n != nodeCount-1 {
				t.Errorf("%s: routerd's count %q = %d, want %d", f.nodes[i].Name, c, n, nodeCount-1)
			}
		}
	}
}

// checkCNIConfig checks the config routerd wrote in node i: the bridge
// plugin on kube-bridge, host-local IPAM over the Node's pod CIDR with
// its state where --ipam-data-dir said.
func (f *fixture) checkCNIConfig(t *testing.T, i int, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type   string `json:"type"`
			Bridge string `json:"bridge"`
			IPAM   struct {
				Type   string `json:"type"`
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
				DataDir string `json:"dataDir"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	n := f.nodes[i]
	if len(conf.Plugins) == 0 {
		t.Fatalf("%s: no plugins:\n%s", path, b)
	}
	p := conf.Plugins[0]
	if p.Type != "bridge" || p.Bridge != n.Bridge || p.IPAM.Type != "host-local" || p.IPAM.DataDir != n.IPAMDir ||
		len(p.IPAM.Ranges) != 1 || len(p.IPAM.Ranges[0]) != 1 || p.IPAM.Ranges[0][0].Subnet != f.cidrs[i].String() {
		t.Fatalf("%s: routerd's CNI config is not the bridge plugin on %s with host-local over %s in %s:\n%s", n.Name, n.Bridge, f.cidrs[i], n.IPAMDir, b)
	}
}

// waitBGPInSync waits until every live node's routerd has a session with
// each other live node, established, with the peer's End-of-RIB received,
// and nothing pending in its sync loop, in two polls in a row (a change
// the speaker saw is then applied: it triggers a sync, pending until
// done).
func (f *fixture) waitBGPInSync(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	streak := 0
	netnstest.WaitFor(t, startTimeout, 50*time.Millisecond, what, func() (bool, string) {
		var whys []string
		for _, i := range f.live() {
			if why := f.bgpInSync(ctx, i); why != "" {
				whys = append(whys, why)
			}
		}
		if len(whys) > 0 {
			streak = 0
			return false, strings.Join(whys, "; ")
		}
		streak++
		return streak >= 2, "in sync once"
	})
}

// bgpInSync says what keeps node i's routerd from being in sync, or "".
func (f *fixture) bgpInSync(ctx context.Context, i int) string {
	n, r := f.nodes[i], f.routerd[i]
	rep, err := r.Status(ctx)
	switch {
	case err != nil:
		return err.Error()
	case !rep.Serving():
		return fmt.Sprintf("%s: routerd %s: %s", n.Name, rep.Health, rep.Error)
	case rep.Status.Sync.LastError != "":
		return fmt.Sprintf("%s: routerd's last sync failed: %s", n.Name, rep.Status.Sync.LastError)
	case rep.Status.Sync.Pending:
		return fmt.Sprintf("%s: routerd has a change pending", n.Name)
	}
	var want, got []string
	for _, j := range f.live() {
		if j != i {
			want = append(want, fmt.Sprintf("%s %s established eor=true", f.nodes[j].Name, f.nodes[j].IP))
		}
	}
	for _, p := range rep.Status.BGPPeers {
		got = append(got, fmt.Sprintf("%s %s %s eor=%v", p.Name, p.Address, p.State, p.EndOfRIB))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return fmt.Sprintf("%s: BGP peers %q, want %q", n.Name, got, want)
	}
	return ""
}

// testPodToPod: every pod reaches every pod of the other nodes, which
// sees the client pod's own address.
func (f *fixture) testPodToPod(t *testing.T) {
	ctx, cancel := stepContext(t, dialTimeout)
	defer cancel()
	var g errgroup.Group
	for i, from := range f.pods {
		for j, to := range f.pods {
			if i == j {
				continue
			}
			g.Go(func() error {
				a, err := from.DialTCP(ctx, netip.AddrPortFrom(to.IP, echoPort))
				if err != nil {
					return err
				}
				if a.Name != to.Name || a.Source.Addr() != from.IP {
					return fmt.Errorf("%s → %s: %s; want %s answering and the source %s (no NAT between pods)", from.Name, to.Name, a, to.Name, from.IP)
				}
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pod-to-pod TCP exchanges across nodes, each with the client pod's own address", len(f.pods)*(len(f.pods)-1))
}

// testMasquerade: a pod reaching the world arrives with its node's
// address. (The world has no route to the pod CIDRs: an answer to an
// unmasqueraded packet would not even come back.)
func (f *fixture) testMasquerade(t *testing.T) {
	ctx, cancel := stepContext(t, dialTimeout)
	defer cancel()
	world := f.topo.World()
	var g errgroup.Group
	for i, p := range f.pods {
		g.Go(func() error {
			a, err := p.DialTCP(ctx, netip.AddrPortFrom(world.IP, echoPort))
			if err != nil {
				return fmt.Errorf("%w (without masquerade the world cannot answer: it has no route to %s)", err, f.cidrs[i])
			}
			if a.Name != world.Name || a.Source.Addr() != f.nodes[i].IP {
				return fmt.Errorf("%s → world: %s; want the world answering and the source %s (%s's address)", p.Name, a, f.nodes[i].IP, f.nodes[i].Name)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("every pod reached the world (%s) with its node's address", world.IP)
}

// testRestart stops node1's routerd (SIGTERM) and starts it again, then
// kills it (-9) and starts it again, while a TCP connection from pod0 to
// pod1 exchanges messages: the connection never breaks and no route of
// routerd's changes in any node.
func (f *fixture) testRestart(t *testing.T) {
	const restarted = 1
	r := f.routerd[restarted]
	w := f.watchRoutes(t, f.live())
	s := openStream(t, f.pods[0], f.pods[1])
	s.waitMore(t, 20, "before the restarts")
	ctx, cancel := stepContext(t, 2*startTimeout)
	defer cancel()

	for _, how := range []struct {
		name string
		stop func() error
	}{
		{"SIGTERM", r.Stop},
		{"kill -9", func() error { r.Kill(); return nil }},
	} {
		begin := time.Now()
		if err := how.stop(); err != nil {
			t.Fatalf("%s: %v", how.name, err)
		}
		s.waitMore(t, 20, "while routerd is down ("+how.name+")")
		down := time.Since(begin)
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.WaitReady(ctx); err != nil {
			t.Fatalf("after %s: %v", how.name, err)
		}
		ready := time.Since(begin)
		f.waitBGPInSync(t, ctx, "BGP back in sync after "+how.name)
		inSync := time.Since(begin)
		f.waitRoutes(t, convergeTimeout, "every route in every node after "+how.name)
		s.waitMore(t, 20, "after the restart ("+how.name+")")
		rep, err := r.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		routeWrites, _ := rep.Status.Count("routeWrites")
		masqWrites, _ := rep.Status.Count("masqueradeWrites")
		t.Logf("%s, then start: down for %v, ready %v, BGP in sync %v after the stop; the restarted routerd wrote %d route and %d masquerade messages",
			how.name, down.Round(time.Millisecond), ready.Round(time.Millisecond), inSync.Round(time.Millisecond), routeWrites, masqWrites)
		f.timing(fmt.Sprintf("restart (%s): stop to BGP in sync again", how.name), inSync)
		if routeWrites != 0 {
			t.Errorf("after %s the restarted routerd wrote %d route messages, want 0 (nothing changed)", how.name, routeWrites)
		}
	}

	events := w.Stop(t, convergeTimeout)
	exchanges, maxGap, err := s.stop()
	if err != nil {
		t.Errorf("the long-lived connection pod0 → pod1 broke: %v", err)
	}
	t.Logf("long-lived connection pod0 → pod1: %d exchanges, longest gap between two answers %v; route events of protocol %d in all nodes: %d",
		exchanges, maxGap.Round(time.Millisecond), routeProtocol, len(events))
	if len(events) > 0 {
		t.Errorf("routes of routerd changed during its restarts (want none, not even a replace with the same attributes):\n%s", joinEvents(events))
	}
}

// testNodeDeleted: node2's routerd stops, its Node is deleted; node0 and
// node1 remove their route to node2's pod CIDR and their session with it,
// and change nothing else.
func (f *fixture) testNodeDeleted(t *testing.T) {
	const gone = 2
	var stay []int
	for _, i := range f.live() {
		if i != gone {
			stay = append(stay, i)
		}
	}
	w := f.watchRoutes(t, stay)
	ctx, cancel := stepContext(t, apiTimeout)
	defer cancel()
	if err := f.routerd[gone].Stop(); err != nil {
		t.Fatal(err)
	}
	if err := f.admin.CoreV1().Nodes().Delete(ctx, f.nodes[gone].Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	f.deleted[gone] = true
	d := f.waitRoutes(t, convergeTimeout, fmt.Sprintf("%s's pod CIDR route gone from the other nodes", f.nodes[gone].Name))
	f.timing("node-deleted: Node deleted to its route gone everywhere", d)
	f.waitBGPInSync(t, ctx, fmt.Sprintf("%s no longer a BGP peer", f.nodes[gone].Name))
	events := w.Stop(t, convergeTimeout)

	var want, got []string
	for _, i := range stay {
		want = append(want, fmt.Sprintf("%s delete %s", f.nodes[i].Name, f.cidrs[gone]))
	}
	for _, e := range events {
		got = append(got, fmt.Sprintf("%s %s %s", e.Node, e.Kind, e.Dst))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("route events on %v: %q, want exactly %q:\n%s", stay, got, want, joinEvents(events))
	}
	t.Logf("%s stopped and its Node deleted: its route gone from %d nodes %v after the delete; route events: %s", f.nodes[gone].Name, len(stay), d.Round(time.Millisecond), strings.Join(got, ", "))

	// The others still reach each other.
	dctx, dcancel := stepContext(t, dialTimeout)
	defer dcancel()
	for _, i := range stay {
		for _, j := range stay {
			if i == j {
				continue
			}
			if _, err := f.pods[i].DialTCP(dctx, netip.AddrPortFrom(f.pods[j].IP, echoPort)); err != nil {
				t.Errorf("after %s was deleted: %v", f.nodes[gone].Name, err)
			}
		}
	}
}

func joinEvents(events []netns.RouteEvent) string {
	var b strings.Builder
	for _, e := range events {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}
