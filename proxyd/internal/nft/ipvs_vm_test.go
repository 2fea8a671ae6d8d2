//go:build kernel && vm

package nft

// proxyd's table beside a real IPVS (Debian's kernel in the VM: go test
// -tags kernel,vm -exec $PWD/_output/bin/vmexec -run VM). IPVS is driven
// with github.com/cloudflare/ipvs directly, as proxyd's IPVS side will.
//
// Address plan, in namespaces of this test:
//
//	ext  eth0 198.18.0.2 ── node n-ext 198.18.0.1        (a client outside the pod CIDR)
//	be   eth0 198.18.1.2 ── node n-be  198.18.1.1        (a backend on another network), serves :8080
//	node br0 198.18.128.1 (pod CIDR 198.18.128.0/24): podA 198.18.128.2, podB 198.18.128.3, serve :8080
//	node vip0 (dummy): the VIPs, as kube-proxy's kube-ipvs0
//
// IPVS virtual services (tcp, rr, masquerading forward):
//
//	198.19.0.10:80 → podB:8080   ClusterIP
//	198.19.0.11:80 → be:8080     ClusterIP, backend off the node
//	198.19.0.12:80 → podA:8080   ClusterIP, podA reaches itself
//	198.19.0.13:80 → podB:8080   LoadBalancer, externalTrafficPolicy Local

import (
	"io"
	"net/netip"
	"os"
	"testing"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requireIPVS skips unless the kernel has IPVS (the VM); the check runs in
// a throwaway namespace.
func requireIPVS(t *testing.T) {
	t.Helper()
	err := netnstest.InNetns(netnstest.New(t), func() error {
		c, err := ipvs.New()
		if err != nil {
			return err
		}
		defer closeIPVS(c)
		_, err = c.Info()
		return err
	})
	if err != nil {
		t.Skipf("this kernel has no IPVS (%v); run in the VM: go test -tags kernel,vm -exec $PWD/_output/bin/vmexec", err)
	}
}

func closeIPVS(c ipvs.Client) {
	if cl, ok := c.(io.Closer); ok {
		_ = cl.Close()
	}
}

func TestVMIPVSMasqueradeHairpinLocal(t *testing.T) {
	requireIPVS(t)
	node, ext, be, podA, podB := netnstest.New(t), netnstest.New(t), netnstest.New(t), netnstest.New(t), netnstest.New(t)

	netnstest.Veth(t, netnstest.End{NS: node, Name: "n-ext", Addrs: []string{"198.18.0.1/24"}},
		netnstest.End{NS: ext, Name: "eth0", Addrs: []string{"198.18.0.2/24"}})
	defaultRoute(t, ext, "198.18.0.1")
	netnstest.Veth(t, netnstest.End{NS: node, Name: "n-be", Addrs: []string{"198.18.1.1/24"}},
		netnstest.End{NS: be, Name: "eth0", Addrs: []string{"198.18.1.2/24"}})
	defaultRoute(t, be, "198.18.1.1")
	netnstest.ServeWho(t, be, ":8080")
	newBridge(t, node, "br0", "198.18.128.1/24")
	attach(t, node, "br0", "n-a", podA, []string{"198.18.128.2/24"}, "198.18.128.1")
	attach(t, node, "br0", "n-b", podB, []string{"198.18.128.3/24"}, "198.18.128.1")
	netnstest.ServeWho(t, podA, ":8080")
	netnstest.ServeWho(t, podB, ":8080")

	h := netnstest.Handle(t, node)
	if err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "vip0"}}); err != nil {
		t.Fatalf("dummy vip0: %v", err)
	}
	vips := []string{"198.19.0.10/32", "198.19.0.11/32", "198.19.0.12/32", "198.19.0.13/32"}
	netnstest.LinkUp(t, h, "vip0", vips...)

	var client ipvs.Client
	if err := netnstest.InNetns(node, func() (err error) {
		client, err = ipvs.New() // its netlink socket stays in node
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeIPVS(client) })
	sysctl(t, node, "net.ipv4.ip_forward", "1")
	// IPVS keeps the connection's conntrack entry: netfilter's NAT (the
	// masquerade) applies to what IPVS forwards.
	sysctl(t, node, "net.ipv4.vs.conntrack", "1")
	if _, err := os.Stat("/proc/sys/net/bridge"); err == nil {
		t.Fatal("br_netfilter is loaded: bridged answers would be de-NATed and the hairpin check would prove nothing")
	}

	services := []struct {
		vip, backend string
		kind         model.Kind
		local        bool
	}{
		{"198.19.0.10", "198.18.128.3", model.ClusterIP, false},
		{"198.19.0.11", "198.18.1.2", model.ClusterIP, false},
		{"198.19.0.12", "198.18.128.2", model.ClusterIP, false},
		{"198.19.0.13", "198.18.128.3", model.LoadBalancer, true},
	}
	var state model.State
	for _, s := range services {
		svc := ipvs.Service{Address: netip.MustParseAddr(s.vip), Port: 80, Protocol: ipvs.TCP, Family: ipvs.INET,
			Scheduler: "rr", Netmask: netmask.MaskFrom(32, 32)}
		if err := client.CreateService(svc); err != nil {
			t.Fatalf("IPVS service %s:80: %v", s.vip, err)
		}
		if err := client.CreateDestination(svc, ipvs.Destination{Address: netip.MustParseAddr(s.backend), Port: 8080,
			Family: ipvs.INET, FwdMethod: ipvs.Masquerade, Weight: 1}); err != nil {
			t.Fatalf("real server %s:8080: %v", s.backend, err)
		}
		v := vs(key(s.vip, 80, model.TCP), s.kind)
		v.ExternalLocal = s.local
		state.Services = append(state.Services, v)
	}

	tb := New(Config{NetNS: int(node)})
	res := mustApply(t, tb, Build(state, prefixes("198.18.128.0/24")))
	if !res.Ops.Recreate {
		t.Fatalf("Apply %+v", res)
	}

	bridge := netip.MustParseAddr("198.18.128.1")
	for _, c := range []struct {
		what string
		from netns.NsHandle
		src  string
		vip  string
		want string
	}{
		{"a client outside the pod CIDR is seen masqueraded by the backend", ext, "", "198.19.0.10", "198.18.128.1"},
		{"a pod reaching a backend on another network keeps its address", podA, "", "198.19.0.11", "198.18.128.2"},
		{"hairpin: a pod reaches another pod on its bridge through a VIP", podA, "", "198.19.0.10", bridge.String()},
		{"hairpin: a pod reaches itself through a VIP", podA, "", "198.19.0.12", bridge.String()},
		{"externalTrafficPolicy Local keeps the client's address", ext, "", "198.19.0.13", "198.18.0.2"},
		{"the node's own connection is masqueraded", node, "198.18.0.1", "198.19.0.11", "198.18.1.1"},
	} {
		var src netip.Addr
		if c.src != "" {
			src = netip.MustParseAddr(c.src)
		}
		if got := seenAs(t, c.from, src, hp(netip.MustParseAddr(c.vip), 80)); got != netip.MustParseAddr(c.want) {
			t.Errorf("%s: the backend saw %v, want %s", c.what, got, c.want)
		}
	}
}
