//go:build kernel

package netns

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The CNI plugins ran in the node's namespace and configured the pod the
// way the node's config says: checked in the kernel, namespace by
// namespace.
func TestPodPlumbing(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{Nodes: 2})
	n := topo.Node(1)
	p := topo.AddPod(t, n, "plumbed")

	// Pod: lo up (loopback plugin), eth0 with an address of the node's pod
	// CIDR and a default route via kube-bridge (bridge plugin, host-local).
	lo, err := p.Netlink().LinkByName("lo")
	must(t, err)
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Error("pod lo is down")
	}
	eth0, err := p.Netlink().LinkByName("eth0")
	must(t, err)
	if eth0.Attrs().HardwareAddr.String() != p.MAC.String() {
		t.Errorf("pod eth0 MAC %s, CNI result said %s", eth0.Attrs().HardwareAddr, p.MAC)
	}
	addrs, err := p.Netlink().AddrList(eth0, netlink.FAMILY_V4)
	must(t, err)
	if len(addrs) != 1 || addrs[0].IPNet.String() != netip.PrefixFrom(p.IP, 24).String() || !n.PodCIDR.Contains(p.IP) {
		t.Errorf("pod eth0 addresses %v, want %s/24 in %s", addrs, p.IP, n.PodCIDR)
	}
	routes, err := p.Netlink().RouteList(nil, netlink.FAMILY_V4)
	must(t, err)
	var gw []string
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
			gw = append(gw, r.Gw.String())
		}
	}
	if len(gw) != 1 || gw[0] != n.Gateway.String() {
		t.Errorf("pod default routes via %v, want via %s", gw, n.Gateway)
	}

	// Node: kube-bridge has the gateway address and kept its fixed MAC; the
	// pod's host-side veth is a port of it with hairpin on; forwarding on.
	br, err := n.Netlink().LinkByName(n.Bridge)
	must(t, err)
	if br.Attrs().HardwareAddr.String() != n.BridgeMAC.String() {
		t.Errorf("kube-bridge MAC %s, want the fixed %s", br.Attrs().HardwareAddr, n.BridgeMAC)
	}
	braddrs, err := n.Netlink().AddrList(br, netlink.FAMILY_V4)
	must(t, err)
	if len(braddrs) != 1 || braddrs[0].IPNet.String() != netip.PrefixFrom(n.Gateway, 24).String() {
		t.Errorf("kube-bridge addresses %v, want %s/24", braddrs, n.Gateway)
	}
	ports := bridgePorts(t, n)
	if len(ports) != 1 {
		t.Fatalf("kube-bridge ports %v, want the pod's veth", ports)
	}
	port, err := n.Netlink().LinkByName(ports[0])
	must(t, err)
	pi, err := n.Netlink().LinkGetProtinfo(port)
	must(t, err)
	if !pi.Hairpin {
		t.Errorf("bridge port %s: hairpin off, the config asks for it", ports[0])
	}
	var fwd string
	must(t, n.Do(func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		fwd = strings.TrimSpace(string(b))
		return err
	}))
	if fwd != "1" {
		t.Errorf("node ip_forward = %q", fwd)
	}
	// Nothing of the pod's plumbing is on the other node or the world.
	for _, ns := range []*NetNS{topo.Node(0).NetNS, topo.World().NetNS} {
		if _, err := ns.Netlink().LinkByName(ports[0]); err == nil {
			t.Errorf("the pod's veth %s is in %s", ports[0], ns.Name)
		}
	}

	// host-local keeps its allocation in the node's own state directory.
	b, err := os.ReadFile(filepath.Join(n.IPAMDir, "nodenet", p.IP.String()))
	must(t, err)
	if !strings.HasPrefix(string(b), p.ContainerID) {
		t.Errorf("host-local allocation of %s: %q, want container %s", p.IP, b, p.ContainerID)
	}

	// Underlay: node eth0 carries the node IP; its peer is on the world bridge.
	ne, err := n.Netlink().LinkByName("eth0")
	must(t, err)
	naddrs, err := n.Netlink().AddrList(ne, unix.AF_INET)
	must(t, err)
	if len(naddrs) != 1 || naddrs[0].IPNet.String() != netip.PrefixFrom(n.IP, 24).String() {
		t.Errorf("node eth0 addresses %v, want %s/24", naddrs, n.IP)
	}
	outer, err := topo.World().Netlink().LinkByName(n.Name)
	must(t, err)
	ub, err := topo.World().Netlink().LinkByName(topo.World().Bridge)
	must(t, err)
	if outer.Attrs().MasterIndex != ub.Attrs().Index {
		t.Errorf("%s's underlay veth is not on the world bridge", n.Name)
	}
}

// A process started with NetNS.Start (as the CNI plugins are) runs in that
// namespace as a whole, not in the test's.
func TestStartRunsProcessInNamespace(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{})
	n := topo.Node(0)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPrintNetns$")
	cmd.Env = append(os.Environ(), printNetnsEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, n.Start(cmd))
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out.Bytes())
	}
	var st unix.Stat_t
	must(t, unix.Stat(n.Path, &st))
	want := fmt.Sprintf("NETNS=net:[%d]", st.Ino)
	if !strings.Contains(out.String(), want+"\n") {
		t.Fatalf("helper printed %q, want %s (the node's namespace)", out.String(), want)
	}
	self, err := os.Readlink("/proc/self/ns/net")
	must(t, err)
	if "NETNS="+self == want {
		t.Fatal("the node's namespace is the test's own")
	}
}

const printNetnsEnv = "NODENET_NETNS_PRINT_NETNS_HELPER"

// TestHelperPrintNetns is the child of TestStartRunsProcessInNamespace: it
// prints the network namespace it runs in.
func TestHelperPrintNetns(t *testing.T) {
	if os.Getenv(printNetnsEnv) == "" {
		t.Skip("helper process of TestStartRunsProcessInNamespace (runs only when it starts it)")
	}
	ns, err := os.Readlink("/proc/self/ns/net")
	must(t, err)
	fmt.Printf("NETNS=%s\n", ns)
}
