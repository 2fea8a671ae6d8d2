package routes

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Tunnels are few (one per remote node that needs one) and change rarely:
// they go through vishvananda/netlink one request at a time. Links are
// looked up by name before a change, never by a remembered index, so that
// a link someone else re-created under the same name is the one changed.

// iptunOf is the link routerd makes for t: IPIP from Local (any when
// unset) to Remote, up from the start. Path MTU discovery is on, as `ip
// tunnel add` does by default: the outer header gets DF and the kernel
// learns the path's MTU instead of fragmenting outer packets.
func iptunOf(t model.Tunnel) *netlink.Iptun {
	tun := &netlink.Iptun{
		LinkAttrs: netlink.LinkAttrs{Name: t.Name, MTU: t.MTU, Flags: net.FlagUp},
		Remote:    net.IP(t.Remote.AsSlice()),
		PMtuDisc:  1,
	}
	if t.Local.IsValid() {
		tun.Local = net.IP(t.Local.AsSlice())
	}
	return tun
}

func (b *nlBackend) addTunnel(t model.Tunnel) (index, msgs int, err error) {
	h, err := b.handle()
	if err != nil {
		return 0, 0, err
	}
	tun := iptunOf(t)
	if err := h.LinkAdd(tun); err != nil {
		return 0, 1, fmt.Errorf("add ipip link: %w", err)
	}
	if tun.Index == 0 {
		l, err := h.LinkByName(t.Name)
		if err != nil {
			return 0, 1, err
		}
		tun.Index = l.Attrs().Index
	}
	return tun.Index, 1, nil
}

func (b *nlBackend) fixTunnel(fix tunnelFix) (index, msgs int, err error) {
	h, err := b.handle()
	if err != nil {
		return 0, 0, err
	}
	name := fix.Tunnel.Name
	l, err := h.LinkByName(name)
	if err != nil {
		return 0, 0, err
	}
	if fix.Recreate {
		if err := h.LinkDel(l); err != nil {
			return 0, 1, fmt.Errorf("delete to re-create: %w", err)
		}
		idx, n, err := b.addTunnel(fix.Tunnel)
		return idx, 1 + n, err
	}
	if fix.MTU {
		msgs++
		if err := h.LinkSetMTU(l, fix.Tunnel.MTU); err != nil {
			return 0, msgs, fmt.Errorf("set MTU %d: %w", fix.Tunnel.MTU, err)
		}
	}
	if fix.Up {
		msgs++
		if err := h.LinkSetUp(l); err != nil {
			return 0, msgs, fmt.Errorf("set up: %w", err)
		}
	}
	return l.Attrs().Index, msgs, nil
}

func (b *nlBackend) removeTunnel(name string) (msgs int, err error) {
	h, err := b.handle()
	if err != nil {
		return 0, err
	}
	l, err := h.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return 0, nil // gone already
	}
	if err != nil {
		return 0, err
	}
	if err := h.LinkDel(l); err != nil {
		return 1, fmt.Errorf("delete link: %w", err)
	}
	return 1, nil
}
