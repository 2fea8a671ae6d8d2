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

	bridgeIndex int
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
	return w, nil
}
