//go:build kernel

package nft

// Helpers of the kernel tests, beside netnstest's network namespaces the
// test creates (the host's namespace is never touched) and veth pairs: a
// bridge, routes, namespace-local sysctls, and TCP servers that answer with
// the address they saw the client come from.

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// pollInterval is how often waits look at the kernel's state again.
const pollInterval = 5 * time.Millisecond

// newBridge creates a bridge with a fixed MAC (its MAC would otherwise
// follow its ports) and addrs.
func newBridge(t *testing.T, ns netns.NsHandle, name string, addrs ...string) {
	t.Helper()
	h := netnstest.Handle(t, ns)
	mac, _ := net.ParseMAC("02:00:c6:12:80:01")
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}}); err != nil {
		t.Fatalf("bridge %s: %v", name, err)
	}
	netnstest.LinkUp(t, h, name, addrs...)
}

// attach puts a pod namespace on the bridge of node: eth0 in the pod, with
// addrs, default routes through gateways.
func attach(t *testing.T, node netns.NsHandle, bridge, port string, pod netns.NsHandle, addrs []string, gateways ...string) {
	t.Helper()
	netnstest.Veth(t, netnstest.End{NS: node, Name: port}, netnstest.End{NS: pod, Name: "eth0", Addrs: addrs})
	h := netnstest.Handle(t, node)
	br, err := h.LinkByName(bridge)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.LinkByName(port)
	if err == nil {
		err = h.LinkSetMaster(p, br)
	}
	if err != nil {
		t.Fatalf("%s on %s: %v", port, bridge, err)
	}
	for _, gw := range gateways {
		defaultRoute(t, pod, gw)
	}
}

func defaultRoute(t *testing.T, ns netns.NsHandle, gw string) {
	t.Helper()
	g := netip.MustParseAddr(gw)
	dst := "0.0.0.0/0"
	if g.Is6() {
		dst = "::/0"
	}
	route(t, ns, dst, gw)
}

func route(t *testing.T, ns netns.NsHandle, dst, via string) {
	t.Helper()
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := netnstest.Handle(t, ns).RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(via)}); err != nil {
		t.Fatalf("route %s via %s: %v", dst, via, err)
	}
}

// sysctl writes a namespace-local sysctl (net.*) of ns.
func sysctl(t *testing.T, ns netns.NsHandle, name, value string) {
	t.Helper()
	path := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if err := netnstest.InNetns(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		t.Fatalf("sysctl %s=%s: %v", name, value, err)
	}
}
