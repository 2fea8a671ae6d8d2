//go:build kernel

package podnet

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Address plan: pod CIDR 198.18.128.0/24 and 2001:db8:80::/64 (later
// 198.18.130.0/24), all on a bridge in a namespace of the test's own.

func TestEnsureBridge(t *testing.T) {
	ns := netnstest.New(t)
	h := netnstest.Handle(t, ns)
	mac, err := BridgeMAC(netip.MustParsePrefix("198.18.128.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	spec := BridgeSpec{
		Name:         "kube-bridge",
		MTU:          1450,
		Gateways:     []netip.Prefix{netip.MustParsePrefix("198.18.128.1/24"), netip.MustParsePrefix("2001:db8:80::1/64")},
		HardwareAddr: mac,
	}
	ensure(t, h, spec, true, "created")
	checkBridge(t, h, spec, nil)
	ensure(t, h, spec, false, "second call")

	// Drift: MTU, MAC, down (which also drops the IPv6 address), the IPv4
	// gateway deleted, an old gateway, the gateway with another length,
	// and an operator's address.
	br, err := h.LinkByName(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	must(t, h.LinkSetMTU(br, 1500))
	must(t, h.LinkSetHardwareAddr(br, net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}))
	must(t, h.LinkSetDown(br))
	must(t, h.AddrDel(br, addr(t, "198.18.128.1/24")))
	for _, a := range []string{"198.18.127.1/24", "198.18.128.1/16", "198.18.0.10/24"} {
		must(t, h.AddrAdd(br, addr(t, a)))
	}
	ensure(t, h, spec, true, "drift")
	checkBridge(t, h, spec, []string{"198.18.0.10/24"})
	ensure(t, h, spec, false, "after the repair")

	// The node's pod CIDR changes: the old gateway goes.
	spec.Gateways = []netip.Prefix{netip.MustParsePrefix("198.18.130.1/24")}
	ensure(t, h, spec, true, "new pod CIDR")
	checkBridge(t, h, spec, []string{"198.18.0.10/24"})
	ensure(t, h, spec, false, "after the new pod CIDR")
}

func TestBridgeMACStaysWithPorts(t *testing.T) {
	ns := netnstest.New(t)
	h := netnstest.Handle(t, ns)
	mac, _ := BridgeMAC(netip.MustParsePrefix("198.18.128.0/24"))
	fixed := BridgeSpec{Name: "br-fixed", Gateways: []netip.Prefix{netip.MustParsePrefix("198.18.128.1/24")}, HardwareAddr: mac}
	ensure(t, h, fixed, true, "fixed")
	// Without a fixed address the kernel gives the bridge the lowest
	// address of its ports: the pitfall.
	loose := BridgeSpec{Name: "br-loose"}
	ensure(t, h, loose, true, "loose")

	// A port with a low address (00:00:5e:00:53:xx, for documentation).
	for i, br := range []string{"br-fixed", "br-loose"} {
		port := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x53, byte(i + 1)}
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.HardwareAddr = "port"+br[2:], port
		must(t, h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "peer" + br[2:]}))
		l, err := h.LinkByName(attrs.Name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := h.LinkByName(br)
		if err != nil {
			t.Fatal(err)
		}
		must(t, h.LinkSetMaster(l, b))
		must(t, h.LinkSetUp(l))
	}
	if got := hwaddr(t, h, "br-fixed"); got != mac.String() {
		t.Errorf("fixed bridge: %s after a port joined, want %s", got, mac)
	}
	if got := hwaddr(t, h, "br-loose"); got != "00:00:5e:00:53:02" {
		t.Errorf("bridge without a fixed address: %s, not its port's: the check of the fixed one proves nothing", got)
	}
	ensure(t, h, fixed, false, "fixed bridge with a port")
}

func TestEnsureBridgeRefuses(t *testing.T) {
	ns := netnstest.New(t)
	h := netnstest.Handle(t, ns)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "notbr"
	must(t, h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "notbr-peer"}))
	if _, err := EnsureBridge(h, BridgeSpec{Name: "notbr"}); err == nil {
		t.Error("a veth taken for the bridge: no error")
	}
	if l, err := h.LinkByName("notbr"); err != nil || l.Type() != "veth" {
		t.Errorf("the veth was changed: %v, %v", l, err)
	}
	for name, spec := range map[string]BridgeSpec{
		"not a gateway": {Name: "br0", Gateways: []netip.Prefix{netip.MustParsePrefix("198.18.128.5/24")}},
		"bad name":      {Name: "a/b"},
		"multicast MAC": {Name: "br0", HardwareAddr: net.HardwareAddr{0x03, 0, 0, 0, 0, 1}},
		"MTU":           {Name: "br0", MTU: 10},
	} {
		if _, err := EnsureBridge(h, spec); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := h.LinkByName("br0"); err == nil {
		t.Error("an invalid spec created a bridge")
	}
}

func ensure(t *testing.T, h *netlink.Handle, spec BridgeSpec, wantChanged bool, what string) {
	t.Helper()
	changed, err := EnsureBridge(h, spec)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if changed != wantChanged {
		t.Fatalf("%s: changed %v, want %v", what, changed, wantChanged)
	}
}

// checkBridge checks the bridge is what spec says, with the global
// addresses spec's gateways plus others.
func checkBridge(t *testing.T, h *netlink.Handle, spec BridgeSpec, others []string) {
	t.Helper()
	l, err := h.LinkByName(spec.Name)
	if err != nil {
		t.Fatal(err)
	}
	a := l.Attrs()
	if l.Type() != "bridge" || a.MTU != spec.MTU && spec.MTU != 0 || a.Flags&net.FlagUp == 0 || a.HardwareAddr.String() != spec.HardwareAddr.String() {
		t.Errorf("bridge: type %s, MTU %d, flags %v, MAC %s; want %+v", l.Type(), a.MTU, a.Flags, a.HardwareAddr, spec)
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ad := range addrs {
		if ad.Scope == unix.RT_SCOPE_UNIVERSE {
			got = append(got, ad.IPNet.String())
		}
	}
	want := slices.Clone(others)
	for _, g := range spec.Gateways {
		want = append(want, g.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("bridge addresses %v, want %v", got, want)
	}
}

func hwaddr(t *testing.T, h *netlink.Handle, name string) string {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr.String()
}

func addr(t *testing.T, s string) *netlink.Addr {
	t.Helper()
	a, err := netlink.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
