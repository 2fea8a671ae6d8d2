package podnet

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// BridgeSpec is the pod bridge as routerd wants it.
type BridgeSpec struct {
	// Name is the bridge's name ("" is DefaultBridge).
	Name string
	// MTU is the bridge's MTU; 0 leaves it as it is.
	MTU int
	// Gateways are the bridge's addresses: Gateway of each pod CIDR
	// (198.18.128.1/24).
	Gateways []netip.Prefix
	// HardwareAddr is the bridge's fixed address (BridgeMAC); nil leaves
	// it to the kernel, which then changes it as ports come and go.
	HardwareAddr net.HardwareAddr
}

func (b BridgeSpec) check() error {
	if err := checkLinkName(b.Name); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	if b.MTU != 0 && (b.MTU < 68 || b.MTU > 65535) {
		return fmt.Errorf("bridge %s: MTU %d out of range", b.Name, b.MTU)
	}
	for _, g := range b.Gateways {
		if !isGatewayShaped(g) {
			return fmt.Errorf("bridge %s: %s is not the gateway of a pod CIDR", b.Name, g)
		}
	}
	if b.HardwareAddr != nil && (len(b.HardwareAddr) != 6 || b.HardwareAddr[0]&1 != 0) {
		return fmt.Errorf("bridge %s: %s is not a unicast Ethernet address", b.Name, b.HardwareAddr)
	}
	return nil
}

// EnsureBridge makes the kernel's bridge b.Name what b says: created if
// missing, MTU and hardware address set, up, every gateway address on it.
// It reports whether it changed anything: a second call changes nothing.
// A link of that name that is not a bridge is an error, left alone.
//
// Addresses: a global address of the bridge that b does not list is
// removed only when it is routerd's: the gateway of another pod CIDR (the
// first host address of its prefix, as a gateway of the node's earlier pod
// CIDR is) or a gateway address with another prefix length. While such an
// address stays, the bridge plugin refuses every IPv4 pod ("already has
// an IP address different from ..."). Any other address was put there by
// someone else, for a reason routerd cannot know (an operator's address,
// another tool's), and is kept; link-local addresses are the kernel's.
func EnsureBridge(h *netlink.Handle, b BridgeSpec) (changed bool, err error) {
	if b.Name == "" {
		b.Name = DefaultBridge
	}
	if err := b.check(); err != nil {
		return false, err
	}
	link, err := h.LinkByName(b.Name)
	if _, missing := errors.AsType[netlink.LinkNotFoundError](err); missing {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU, attrs.HardwareAddr = b.Name, b.MTU, b.HardwareAddr
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return false, fmt.Errorf("create bridge %s: %w", b.Name, err)
		}
		changed = true
		link, err = h.LinkByName(b.Name)
	}
	if err != nil {
		return changed, fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	if link.Type() != "bridge" {
		return changed, fmt.Errorf("link %s is a %s, not a bridge", b.Name, link.Type())
	}
	c, err := repairLink(h, link, b)
	changed = changed || c
	if err != nil {
		return changed, err
	}
	c, err = repairAddrs(h, link, b)
	return changed || c, err
}

// repairLink sets the bridge's MTU, hardware address and up state.
func repairLink(h *netlink.Handle, link netlink.Link, b BridgeSpec) (changed bool, err error) {
	a := link.Attrs()
	if b.MTU != 0 && a.MTU != b.MTU {
		if err := h.LinkSetMTU(link, b.MTU); err != nil {
			return changed, fmt.Errorf("bridge %s: MTU %d: %w", b.Name, b.MTU, err)
		}
		changed = true
	}
	if b.HardwareAddr != nil && !bytes.Equal(a.HardwareAddr, b.HardwareAddr) {
		// Set explicitly, the kernel keeps it (NET_ADDR_SET) instead of
		// taking the lowest address of the ports.
		if err := h.LinkSetHardwareAddr(link, b.HardwareAddr); err != nil {
			return changed, fmt.Errorf("bridge %s: hardware address %s: %w", b.Name, b.HardwareAddr, err)
		}
		changed = true
	}
	if a.Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(link); err != nil {
			return changed, fmt.Errorf("bridge %s up: %w", b.Name, err)
		}
		changed = true
	}
	return changed, nil
}

// repairAddrs removes routerd's stale gateway addresses from the bridge,
// then adds the missing ones (see EnsureBridge).
func repairAddrs(h *netlink.Handle, link netlink.Link, b BridgeSpec) (changed bool, err error) {
	have, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return false, fmt.Errorf("bridge %s: list addresses: %w", b.Name, err)
	}
	gatewayIPs := map[netip.Addr]bool{}
	for _, g := range b.Gateways {
		gatewayIPs[g.Addr()] = true
	}
	present := map[netip.Prefix]bool{}
	for _, a := range have {
		p, ok := addrPrefix(a)
		if !ok || a.Scope != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		if slices.Contains(b.Gateways, p) {
			present[p] = true
			continue
		}
		if !isGatewayShaped(p) && !gatewayIPs[p.Addr()] {
			continue // not routerd's
		}
		if err := h.AddrDel(link, &a); err != nil {
			return changed, fmt.Errorf("bridge %s: remove old gateway %s: %w", b.Name, p, err)
		}
		changed = true
	}
	for _, g := range b.Gateways {
		if present[g] {
			continue
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: g.Addr().AsSlice(), Mask: net.CIDRMask(g.Bits(), g.Addr().BitLen())}}
		if g.Addr().Is6() {
			// The gateway is routerd's alone on this segment: usable at
			// once, without a second or two of duplicate address detection.
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, a); err != nil {
			return changed, fmt.Errorf("bridge %s: add gateway %s: %w", b.Name, g, err)
		}
		present[g], changed = true, true // a gateway listed twice is added once
	}
	return changed, nil
}

// addrPrefix is a's address and prefix length.
func addrPrefix(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}
