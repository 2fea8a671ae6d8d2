//go:build e2eguest

package proxyd

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
)

// TestGuest is the guest half (see the package comment). Its steps share
// one topology, one control plane and one proxyd, in this order:
//
//	setup         nodes, pods, Services, foreign kernel state, proxyd started
//	roundrobin    a pod reaches a ClusterIP: connections alternate between two backends
//	masquerade    NodePort from the world (Cluster: SNAT to the node; Local:
//	              the client's address, local endpoints only) and hairpin
//	affinity      sessionAffinity ClientIP: one client, one backend
//	restart       SIGTERM and restart during a connection: it lives on, and
//	              the new proxyd writes nothing to the kernel
//	drain         a terminating endpoint keeps its connection, new ones go elsewhere
//	cleanup       proxyd cleanup leaves the kernel as it was before proxyd
//
// Address plan (test/netns, test/controlplane): underlay 198.18.0.0/24
// (world .1, node0 .10, node1 .11), node i's pods 198.18.(128+i).0/24,
// Services 198.19.0.0/16.
func TestGuest(t *testing.T) {
	harness.SkipUnlessGuest(t, "TestProxydInVM")
	e := setup(t)

	t.Run("roundrobin", e.testRoundRobin)
	t.Run("masquerade", e.testMasquerade)
	t.Run("trace", e.testTrace)
	t.Run("affinity", e.testAffinity)
	t.Run("restart", e.testRestart)
	t.Run("drain", e.testDrain)
	t.Run("cleanup", e.testCleanup)
}

// testRoundRobin: sequential connections from a pod to a ClusterIP
// alternate between the two backends (IPVS rr), and the backends, on the
// other node, see the pod's own address (pod to Service is not NATed on
// the source side).
func (e *env) testRoundRobin(t *testing.T) {
	var got []string
	for range 6 {
		a := e.dial(t, e.client.NetNS, e.vip("web"))
		if a.Source.Addr() != e.client.IP {
			t.Errorf("%s saw source %s, want the client pod's %s", a.Name, a.Source.Addr(), e.client.IP)
		}
		got = append(got, a.Name)
	}
	t.Logf("backends in connection order: %v", got)
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("connections %d and %d both went to %s: not round robin (%v)", i, i+1, got[i], got)
		}
	}
	if !slices.Contains(got, "web-1") || !slices.Contains(got, "web-2") {
		t.Fatalf("backends %v, want web-1 and web-2", got)
	}
}

// testMasquerade: who the backend sees as the client.
func (e *env) testMasquerade(t *testing.T) {
	world := e.topo.World()
	t.Run("nodeport-cluster", func(t *testing.T) {
		// externalTrafficPolicy Cluster: masqueraded to the node, whose
		// route to the backends on node1 leaves from its underlay address.
		seen := map[string]bool{}
		for range 4 {
			a := e.dial(t, world.NetNS, e.nodePort("web-np"))
			seen[a.Name] = true
			if a.Source.Addr() != e.n0.IP {
				t.Errorf("%s saw source %s, want node0's %s (masqueraded)", a.Name, a.Source.Addr(), e.n0.IP)
			}
		}
		if !seen["web-1"] || !seen["web-2"] {
			t.Errorf("backends %v, want web-1 and web-2", seen)
		}
	})
	t.Run("nodeport-local", func(t *testing.T) {
		// externalTrafficPolicy Local: the client's address, and only the
		// endpoint on node0 (local-2 on node1 gets nothing through node0).
		for range 4 {
			a := e.dial(t, world.NetNS, e.nodePort("local-np"))
			if a.Name != "local-1" {
				t.Errorf("%s answered, want local-1 (the only endpoint on node0)", a.Name)
			}
			if a.Source.Addr() != world.IP {
				t.Errorf("%s saw source %s, want the client's %s", a.Name, a.Source.Addr(), world.IP)
			}
		}
	})
	t.Run("hairpin", func(t *testing.T) {
		// A pod reaching a backend on its own node through a ClusterIP is
		// masqueraded to the bridge (else the backend would answer it
		// directly, past IPVS); a backend on another node sees the pod.
		want := map[string]netip.Addr{"local-1": e.n0.Gateway, "local-2": e.client.IP}
		seen := map[string]bool{}
		for range 4 {
			a := e.dial(t, e.client.NetNS, e.vip("local-np"))
			seen[a.Name] = true
			if w, ok := want[a.Name]; !ok || a.Source.Addr() != w {
				t.Errorf("%s saw source %s, want %s", a.Name, a.Source.Addr(), w)
			}
		}
		if len(seen) != 2 {
			t.Errorf("backends %v, want local-1 and local-2", seen)
		}
	})
}

// testAffinity: with sessionAffinity ClientIP every connection of one
// client goes to the backend its first one got.
func (e *env) testAffinity(t *testing.T) {
	var got []string
	for range 6 {
		got = append(got, e.dial(t, e.client.NetNS, e.vip("sticky")).Name)
	}
	t.Logf("backends in connection order: %v", got)
	for _, n := range got {
		if n != got[0] {
			t.Fatalf("connections went to %v: not sticky", got)
		}
	}
}

// testRestart: SIGTERM leaves the datapath as it is, so an open connection
// through a ClusterIP keeps working while proxyd is gone and after it is
// back; the new proxyd adopts the kernel state and writes nothing.
func (e *env) testRestart(t *testing.T) {
	s := e.open(t, e.client.NetNS, e.vip("web"))
	first := e.ask(t, s)
	before := e.snapshot(t)
	conns := e.vsConnections(t)
	gen, routes := e.nftGeneration(t), e.watchRoutes(t)

	begin := time.Now()
	e.stopProxyd(t)
	t.Logf("proxyd stopped in %v", time.Since(begin).Round(time.Millisecond))
	e.sameConnection(t, first, e.ask(t, s), "with proxyd stopped")
	if d := diffSnapshots(before, e.snapshot(t)); d != "" {
		t.Errorf("SIGTERM changed the kernel state:\n%s", d)
	}

	begin = time.Now()
	e.startProxyd(t)
	m := e.waitSynced(t)
	t.Logf("proxyd restarted and synced in %v", time.Since(begin).Round(time.Millisecond))
	if w := m.writes(); w.total() != 0 {
		t.Errorf("the restarted proxyd wrote to the kernel with nothing changed: %v", w)
	}
	e.sameConnection(t, first, e.ask(t, s), "after the restart")
	after := e.snapshot(t)
	if d := diffSnapshots(before, after); d != "" {
		t.Errorf("the restart changed the kernel state:\n%s", d)
	}
	// Deleted and re-created virtual services would have lost their
	// connection counts.
	for k, n := range e.vsConnections(t) {
		if n < conns[k] {
			t.Errorf("virtual service %s: %d connections, %d before the restart: re-created", k, n, conns[k])
		}
	}
	// A new connection works too, and still nothing was written: by
	// proxyd's count, and as the kernel tells (no route notification, the
	// same nftables generation).
	e.dial(t, e.client.NetNS, e.vip("web"))
	if w := e.metrics(t).writes(); w.total() != 0 {
		t.Errorf("the restarted proxyd wrote to the kernel: %v", w)
	}
	if ev := routes(); len(ev) > 0 {
		t.Errorf("routes changed during the restart:\n%s", strings.Join(ev, "\n"))
	}
	if g := e.nftGeneration(t); g != gen {
		t.Errorf("the nftables generation went from %d to %d during the restart: a transaction was committed", gen, g)
	}
	_ = s.Close()
}

// testDrain: a backend's pod is deleted (gracefully: it stays terminating,
// as no kubelet confirms it). Its endpoint is no longer ready, so proxyd
// drains the real server (weight 0) instead of removing it: an open
// connection to it keeps working, new connections go to the other backend.
func (e *env) testDrain(t *testing.T) {
	s := e.open(t, e.client.NetNS, e.vip("web"))
	first := e.ask(t, s)
	leaving := e.pods[first.Name]
	staying := e.pods["web-1"]
	if leaving == staying {
		staying = e.pods["web-2"]
	}
	t.Logf("the session is with %s; deleting its pod, %s stays", leaving.Name, staying.Name)
	e.deletePodGracefully(t, leaving.Name)

	// The real server stays, at weight 0, while the connection is open.
	var now map[netip.AddrPort]uint32
	waitFor(t, convergeTimeout, "proxyd acts on the endpoint's removal", func() (bool, string) {
		vs, err := e.virtualService(e.vip("web"))
		if err != nil {
			return false, err.Error()
		}
		now = vs.dests
		w, ok := now[backend(leaving)]
		return !ok || w != 1, fmt.Sprintf("real servers %v", now)
	})
	if want := map[netip.AddrPort]uint32{backend(leaving): 0, backend(staying): 1}; !maps.Equal(now, want) {
		t.Fatalf("real servers %v once the endpoint went, want %v: the leaving one drained (weight 0), not removed", now, want)
	}
	if ep := e.endpoint(t, "web", leaving.IP); !ptr.Deref(ep.Conditions.Terminating, false) || ptr.Deref(ep.Conditions.Ready, true) {
		t.Fatalf("endpoint %s of the deleted pod: conditions %+v, want terminating and not ready", leaving.IP, ep.Conditions)
	}
	e.sameConnection(t, first, e.ask(t, s), "after its endpoint went")
	for range 4 {
		if a := e.dial(t, e.client.NetNS, e.vip("web")); a.Name != staying.Name {
			t.Errorf("a new connection went to %s, want %s (the draining backend gets none)", a.Name, staying.Name)
		}
	}
	e.sameConnection(t, first, e.ask(t, s), "after new connections went elsewhere")
	_ = s.Close()
}

// testCleanup: proxyd cleanup removes its virtual services, VIP routes and
// table, and nothing else: the kernel is as it was before proxyd first ran
// (foreign IPVS services, a foreign local route and a foreign nftables
// table included). A second cleanup finds nothing to do.
func (e *env) testCleanup(t *testing.T) {
	e.stopProxyd(t)
	e.cleanup(t, 1)
	if d := diffSnapshots(e.pristine, e.snapshot(t)); d != "" {
		t.Fatalf("after proxyd cleanup the kernel differs from before proxyd ran:\n%s", d)
	}
	e.cleanup(t, 2)
	if d := diffSnapshots(e.pristine, e.snapshot(t)); d != "" {
		t.Fatalf("a second proxyd cleanup changed the kernel:\n%s", d)
	}
}

// backend is a pod's echo server as a real server.
func backend(p *netns.Pod) netip.AddrPort { return netip.AddrPortFrom(p.IP, backendPort) }
