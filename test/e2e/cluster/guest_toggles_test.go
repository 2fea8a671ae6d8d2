//go:build e2eguest

package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/nodenet/nodenet/test/daemonproc"
	"github.com/nodenet/nodenet/test/netns"
)

// testToggles: one daemon disabled on a node, as the chart does it (the
// container gone, the others told with --peers not to expect it), and the
// other two keep doing their job there:
//
//   - firewalld disabled on node2 (routerd + proxyd): its table removed
//     (firewalld cleanup); routerd writes the CNI config at once, not
//     waiting for firewalld; a new pod gets network, is reached from
//     another node and reaches a Service.
//   - proxyd disabled on node1 (routerd + firewalld): IPVS and its table
//     removed (proxyd cleanup); pods route, firewalld enforces a new
//     policy there, and routerd advertises Service IPs from the API
//     objects (its documented fallback without proxyd).
//   - routerd disabled on node0 (proxyd + firewalld): routerd stopped;
//     the routes it left stand in for those another CNI would keep (and
//     the other nodes hold node0's by graceful restart): proxyd serves a
//     new Service round robin, and its NodePort to the world, firewalld
//     enforces a new policy.
//
// The node gets all three back after each case. Two daemons disabled at
// once are the other suites: proxyd alone is test/e2e/proxyd, firewalld
// alone test/policy, routerd alone test/routing.
func (c *cluster) testToggles(t *testing.T) {
	t.Run("firewalld-disabled", func(t *testing.T) { c.withOnly(t, 2, c.firewalldDisabled, "routerd", "proxyd") })
	t.Run("proxyd-disabled", func(t *testing.T) { c.withOnly(t, 1, c.proxydDisabled, "routerd", "firewalld") })
	t.Run("routerd-disabled", func(t *testing.T) { c.withOnly(t, 0, c.routerdDisabled, "proxyd", "firewalld") })
}

// withOnly runs check with only the daemons enabled on node i, then gives
// the node all three back. A disabled firewalld or proxyd is cleaned up
// (what it left in the kernel would still act); a disabled routerd is
// only stopped (see testToggles).
func (c *cluster) withOnly(t *testing.T, i int, check func(*testing.T, int), enabled ...string) {
	n, ds := c.nodes[i], c.daemons[i]
	args := map[string][]string{}
	for _, name := range daemonNames {
		_, args[name] = ds[name].Binary()
	}
	begin := time.Now()
	for _, name := range daemonNames {
		d := ds[name]
		if err := d.Stop(); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(enabled, name) && name != "routerd" {
			if err := d.Cleanup(ctxFor(t, opTimeout), args[name]...); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { c.restoreAll(t, i, args) })
	if slices.Contains(enabled, "routerd") {
		// routerd writes the config again, at once (firewalld is not
		// among its peers): prove it by taking the old one away.
		if err := os.Remove(filepath.Join(n.CNIConfDir, cniConfFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	for _, name := range enabled {
		var peers []string
		for _, p := range enabled {
			if p != name {
				peers = append(peers, p)
			}
		}
		bin, _ := ds[name].Binary()
		ds[name].Use(bin, append(slices.Clone(args[name]), "--peers="+strings.Join(peers, ",")))
		if err := ds[name].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range enabled {
		c.waitBack(t, ds[name])
	}
	t.Logf("%s runs %s only, after %v", n.Name, strings.Join(enabled, " + "), time.Since(begin).Round(time.Millisecond))
	check(t, i)
}

// restoreAll gives node i its three daemons back, with their own flags.
func (c *cluster) restoreAll(t *testing.T, i int, args map[string][]string) {
	ds := c.daemons[i]
	for _, name := range daemonNames {
		if err := ds[name].Stop(); err != nil {
			t.Error(err)
		}
		bin, _ := ds[name].Binary()
		ds[name].Use(bin, args[name])
	}
	for _, name := range daemonNames {
		if err := ds[name].Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range daemonNames {
		c.waitBack(t, ds[name])
	}
	c.mu.Lock()
	want := c.policies
	c.mu.Unlock()
	c.waitPolicies(t, want)
}

func (c *cluster) firewalldDisabled(t *testing.T, i int) {
	n := c.nodes[i]
	_, err := c.daemons[i]["routerd"].WaitStatus(ctxFor(t, startTimeout), "the CNI config, not waiting for firewalld", func(r daemonproc.Report) (bool, string) {
		w, _ := r.Status.Count("waitingForFirewalld")
		_, err := os.Stat(filepath.Join(n.CNIConfDir, cniConfFile))
		return err == nil && w == 0, fmt.Sprintf("config: %v, waitingForFirewalld %d", err, w)
	})
	if err != nil {
		t.Fatal(err)
	}
	const ns = "no-firewalld"
	c.createNamespace(t, ns)
	web := map[string]string{"app": "web"}
	pods := c.createPods(t, ns, []podSpec{
		{name: "nofw-here", node: i, serve: true},
		{name: "nofw-web-a", node: (i + 1) % len(c.nodes), labels: web, serve: true},
		{name: "nofw-web-b", node: (i + 2) % len(c.nodes), labels: web, serve: true},
	})
	svc := c.createService(t, ns, "web", "web", corev1.ServiceTypeClusterIP)
	here, other := pods["nofw-here"], pods["nofw-web-a"]
	if a, err := reach(t.Context(), other.NetNS, podAddr(here)); err != nil || a.Name != here.Name || a.Source.Addr() != other.IP {
		t.Fatalf("%s to %s on %s: %s seeing %s, %v", other.Name, here.Name, n.Name, a.Name, a.Source, err)
	}
	waitAllBackends(t, here.NetNS, vip(svc), []*netns.Pod{pods["nofw-web-a"], pods["nofw-web-b"]})
	t.Logf("%s without firewalld: CNI config written at once, a new pod reached from %s and reaching %s round robin",
		n.Name, other.Node.Name, vip(svc))
}

func (c *cluster) proxydDisabled(t *testing.T, i int) {
	n := c.nodes[i]
	const ns = "no-proxyd"
	c.createNamespace(t, ns)
	guarded := map[string]string{"app": "noproxy-guarded"}
	client := map[string]string{"role": "client"}
	far := (i + 1) % len(c.nodes)
	pods := c.createPods(t, ns, []podSpec{
		{name: "noproxy-guarded", node: i, labels: guarded, serve: true},
		{name: "noproxy-friend", node: far, labels: client},
		{name: "noproxy-stranger", node: far},
	})
	g := pods["noproxy-guarded"]
	// routerd advertises the ClusterIP from the Service object.
	svc := c.createService(t, ns, "noproxy-guarded", "noproxy-guarded", corev1.ServiceTypeClusterIP)
	c.bird.waitAdvertisers(t, hostPrefix(netip.MustParseAddr(svc.Spec.ClusterIP)), c.nodeNames()...)
	c.createPolicy(t, ns, "friends-only", guarded, client)
	if a, err := reach(t.Context(), pods["noproxy-friend"].NetNS, podAddr(g)); err != nil || a.Name != g.Name {
		t.Fatalf("friend to guarded on %s: %s, %v", n.Name, a.Name, err)
	}
	expectBlocked(t, pods["noproxy-stranger"].NetNS, podAddr(g))
	t.Logf("%s without proxyd: routes and the policy work, routerd advertises %s from the API", n.Name, svc.Spec.ClusterIP)
}

func (c *cluster) routerdDisabled(t *testing.T, i int) {
	n := c.nodes[i]
	const ns = "no-routerd"
	c.createNamespace(t, ns)
	web := map[string]string{"app": "web"}
	client := map[string]string{"role": "client"}
	pods := c.createPods(t, ns, []podSpec{
		{name: "norouter-web-a", node: (i + 1) % len(c.nodes), labels: web, serve: true},
		{name: "norouter-web-b", node: (i + 2) % len(c.nodes), labels: web, serve: true},
		{name: "norouter-local", node: i, labels: web, serve: true},
		{name: "norouter-friend", node: i, labels: client},
		{name: "norouter-stranger", node: i},
	})
	backends := []*netns.Pod{pods["norouter-web-a"], pods["norouter-web-b"], pods["norouter-local"]}
	svc := c.createService(t, ns, "web", "web", corev1.ServiceTypeNodePort)
	waitAllBackends(t, pods["norouter-friend"].NetNS, vip(svc), backends)
	np := netip.AddrPortFrom(n.IP, uint16(svc.Spec.Ports[0].NodePort))
	waitAllBackends(t, c.world.NetNS, np, backends)
	c.createPolicy(t, ns, "web-friends-only", web, client)
	if a, err := reach(t.Context(), pods["norouter-friend"].NetNS, podAddr(pods["norouter-local"])); err != nil || a.Name != "norouter-local" {
		t.Fatalf("friend to local: %s, %v", a.Name, err)
	}
	expectBlocked(t, pods["norouter-stranger"].NetNS, podAddr(pods["norouter-local"]), podAddr(pods["norouter-web-a"]))
	t.Logf("%s without routerd: proxyd serves %s and NodePort %s round robin, firewalld enforces a new policy", n.Name, vip(svc), np)
}
