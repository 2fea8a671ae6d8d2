package netns

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	"github.com/vishvananda/netlink"
)

// Node is a Kubernetes node: a namespace with eth0 on the underlay, IP
// forwarding on, and a pod bridge its pods are attached to by the CNI
// plugins. Name ("node0", ...) and the namespace helpers (Do, AddRoute,
// Serve*, Dial*, FlushConntrack, ...) come from the embedded NetNS; a server
// started on a node plays a hostNetwork pod.
type Node struct {
	*NetNS
	// Index is the node's number: node i is "node<i>".
	Index int
	// IP is the node's underlay address, 198.18.0.(10+Index), on eth0;
	// 198.18.1.(10+Index) when the node is routed.
	IP netip.Addr
	// Routed says the node sits on the routed subnet (RoutedCIDR), behind
	// the world, not on the underlay with the others
	// (Options.RoutedNodes).
	Routed bool
	// PodCIDR is the node's pod range, 198.18.(128+Index).0/24.
	PodCIDR netip.Prefix
	// Gateway is the pods' default gateway: kube-bridge's address, the
	// first address of PodCIDR (the bridge plugin assigns it).
	Gateway netip.Addr
	// Bridge is the pod bridge's name, "kube-bridge".
	Bridge string
	// BridgeMAC is the pod bridge's fixed MAC.
	BridgeMAC net.HardwareAddr
	// CNIConfDir is the node's CNI config directory (its /etc/cni/net.d):
	// pods are attached with the first .conflist in it.
	CNIConfDir string
	// IPAMDir is host-local's state directory for this node.
	IPAMDir string

	cni *libcni.CNIConfig
}

func newNode(t *Topology, i int) (_ *Node, err error) {
	name := fmt.Sprintf("node%d", i)
	dir := filepath.Join(t.Dir, "nodes", name)
	routed := i >= t.opts.nodes()-t.opts.RoutedNodes
	n := &Node{
		Index:      i,
		IP:         nodeIP(i, routed),
		Routed:     routed,
		PodCIDR:    nodePodCIDR(i),
		Gateway:    nodePodCIDR(i).Addr().Next(),
		Bridge:     bridgeName,
		BridgeMAC:  nodeBridgeMAC(i),
		CNIConfDir: filepath.Join(dir, "net.d"),
		IPAMDir:    filepath.Join(dir, "host-local"),
	}
	for _, d := range []string{n.CNIConfDir, n.IPAMDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if n.NetNS, err = newNetNS(name, t.netnsPath(name), true); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = n.destroy()
		}
	}()
	if err := n.plugUnderlay(t.world); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := n.SetSysctl("net/ipv4/ip_forward", "1"); err != nil {
		return nil, fmt.Errorf("%s: ip_forward: %w", name, err)
	}
	if err := n.makeBridge(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if !t.opts.NoCNIConfig {
		if err := n.WriteCNIConfig(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	n.cni = libcni.NewCNIConfigWithCacheDir([]string{t.cniBinDir}, filepath.Join(t.Dir, "cni-cache"), nsExec{ns: n.NetNS})
	return n, nil
}

// plugUnderlay connects the node to the world bridge of its subnet with a
// veth pair: "eth0" in the node, "<node name>" on the bridge in the world.
// When the topology has two subnets, the node routes the other one
// through the world.
func (n *Node) plugUnderlay(w *World) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = n.Name
	attrs.MasterIndex = w.bridgeIndex
	subnet, other, gw := UnderlayCIDR(), RoutedCIDR(), w.IP
	if n.Routed {
		attrs.MasterIndex = w.routedBridgeIndex
		subnet, other, gw = RoutedCIDR(), UnderlayCIDR(), w.RoutedIP
	}
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(n.handle))}
	if err := w.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth to the underlay: %w", err)
	}
	outer, err := w.nl.LinkByName(n.Name)
	if err != nil {
		return err
	}
	if err := w.nl.LinkSetUp(outer); err != nil {
		return err
	}
	eth0, err := n.nl.LinkByName("eth0")
	if err != nil {
		return err
	}
	if err := n.nl.AddrAdd(eth0, &netlink.Addr{IPNet: addrIPNet(n.IP, subnet.Bits())}); err != nil {
		return fmt.Errorf("address %s: %w", n.IP, err)
	}
	if err := n.nl.LinkSetUp(eth0); err != nil {
		return err
	}
	if w.routedBridgeIndex == 0 {
		return nil
	}
	if err := n.AddRoute(other, gw); err != nil {
		return fmt.Errorf("route to %s via %s: %w", other, gw, err)
	}
	return nil
}

// makeBridge creates kube-bridge with a fixed MAC before any pod exists. The
// bridge plugin finds and uses it; the fixed MAC means the pods' gateway
// MAC never changes as pods (and so bridge ports) come and go.
func (n *Node) makeBridge() error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = n.Bridge
	attrs.HardwareAddr = n.BridgeMAC
	if err := n.nl.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	br, err := n.nl.LinkByName(n.Bridge)
	if err != nil {
		return err
	}
	return n.nl.LinkSetUp(br)
}

// WriteCNIConfig writes the node's default CNI config (bridge on
// kube-bridge, host-local IPAM from PodCIDR) into CNIConfDir, atomically.
// New does it unless Options.NoCNIConfig.
func (n *Node) WriteCNIConfig() error {
	b, err := bridgeConfList(n.PodCIDR, n.IPAMDir)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(n.CNIConfDir, cniConfFile), b)
}

// BridgeHardwareAddr reads kube-bridge's current MAC from the kernel.
func (n *Node) BridgeHardwareAddr() (net.HardwareAddr, error) {
	br, err := n.nl.LinkByName(n.Bridge)
	if err != nil {
		return nil, err
	}
	return br.Attrs().HardwareAddr, nil
}
