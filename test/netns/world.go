package netns

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// World is the topology's own stand-in for the network between the nodes:
// a namespace holding the underlay bridge every node's eth0 is plugged
// into. It has an address on the underlay too (WorldIP), so a test can use
// it as a client from outside the cluster, or as a BGP peer or router.
type World struct {
	*NetNS
	// IP is the world's address on the underlay.
	IP netip.Addr
	// Bridge is the underlay bridge's name.
	Bridge string
	// BridgeMAC is the underlay bridge's fixed MAC.
	BridgeMAC net.HardwareAddr
	// RoutedIP is the world's address on the routed subnet, when the
	// topology has routed nodes (Options.RoutedNodes); invalid otherwise.
	RoutedIP netip.Addr

	bridgeIndex       int
	routedBridgeIndex int
}

func newWorld(t *Topology) (_ *World, err error) {
	ns, err := newNetNS("world", t.netnsPath("world"), true)
	if err != nil {
		return nil, err
	}
	w := &World{NetNS: ns, IP: WorldIP(), Bridge: "underlay", BridgeMAC: worldBridgeMAC()}
	defer func() {
		if err != nil {
			_ = w.destroy()
		}
	}()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = w.Bridge
	attrs.HardwareAddr = w.BridgeMAC
	br := &netlink.Bridge{LinkAttrs: attrs}
	if err := ns.nl.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("world: bridge %s: %w", w.Bridge, err)
	}
	link, err := ns.nl.LinkByName(w.Bridge)
	if err != nil {
		return nil, fmt.Errorf("world: %w", err)
	}
	w.bridgeIndex = link.Attrs().Index
	if err := ns.nl.AddrAdd(link, &netlink.Addr{IPNet: addrIPNet(w.IP, UnderlayCIDR().Bits())}); err != nil {
		return nil, fmt.Errorf("world: address %s: %w", w.IP, err)
	}
	if err := ns.nl.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("world: %s up: %w", w.Bridge, err)
	}
	if t.opts.RoutedNodes > 0 {
		if err := w.addRoutedSubnet(); err != nil {
			return nil, fmt.Errorf("world: %w", err)
		}
	}
	return w, nil
}

// addRoutedSubnet makes the routed nodes' bridge, "routed", with the
// world's address on RoutedCIDR, and turns the world into the router
// between the two subnets.
func (w *World) addRoutedSubnet() error {
	w.RoutedIP = RoutedWorldIP()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = "routed"
	attrs.HardwareAddr = routedBridgeMAC()
	if err := w.nl.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return fmt.Errorf("bridge %s: %w", attrs.Name, err)
	}
	link, err := w.nl.LinkByName(attrs.Name)
	if err != nil {
		return err
	}
	w.routedBridgeIndex = link.Attrs().Index
	if err := w.nl.AddrAdd(link, &netlink.Addr{IPNet: addrIPNet(w.RoutedIP, RoutedCIDR().Bits())}); err != nil {
		return fmt.Errorf("address %s: %w", w.RoutedIP, err)
	}
	if err := w.nl.LinkSetUp(link); err != nil {
		return err
	}
	return w.SetSysctl("net/ipv4/ip_forward", "1")
}
