package app

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/nodenet/nodenet/routerd/internal/controller"
	"github.com/nodenet/nodenet/routerd/internal/egress"
	"github.com/nodenet/nodenet/routerd/internal/model"
	"github.com/nodenet/nodenet/routerd/internal/podnet"
	"github.com/nodenet/nodenet/routerd/internal/routes"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeTable adapts package routes to the controller.
type routeTable struct{ k routes.Interface }

var _ controller.RouteTable = routeTable{}

func (r routeTable) Apply(rs []model.Route, ts []model.Tunnel, full bool) (int, error) {
	if full {
		r.k.Invalidate()
	}
	res, err := r.k.Apply(routes.Desired{Routes: rs, Tunnels: ts})
	return res.Messages, err
}

func (r routeTable) Installed() ([]model.Route, error) { return r.k.Installed() }

// masquerade adapts package egress to the controller: switched off, the
// table is deleted (once, and again on full syncs).
type masquerade struct {
	t   egress.Interface
	off bool
}

var _ controller.Masquerade = (*masquerade)(nil)

func (m *masquerade) Apply(pods, keep []netip.Prefix, full bool) (int, error) {
	if len(pods) == 0 {
		if m.off && !full {
			return 0, nil
		}
		if err := m.t.Delete(); err != nil {
			return 0, err
		}
		m.off = true
		return 0, nil
	}
	if full || m.off {
		m.t.Invalidate()
	}
	m.off = false
	res, err := m.t.Apply(egress.Desired{PodCIDRs: pods, NoMasquerade: keep})
	return res.Writes, err
}

// podNetwork is the node's bridge, links and CNI config over netlink and
// package podnet.
type podNetwork struct {
	h   *netlink.Handle
	cfg *controller.Config
}

var _ controller.PodNetwork = (*podNetwork)(nil)

func (p *podNetwork) BridgeExists() (bool, error) {
	_, err := p.h.LinkByName(p.cfg.Bridge)
	if err == nil {
		return true, nil
	}
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return false, nil
	}
	return false, err
}

func (p *podNetwork) EnsureBridge(cidrs []netip.Prefix, mtu int) (bool, error) {
	spec := podnet.BridgeSpec{Name: p.cfg.Bridge, MTU: mtu}
	for _, c := range cidrs {
		gw, err := podnet.Gateway(c)
		if err != nil {
			return false, err
		}
		spec.Gateways = append(spec.Gateways, gw)
	}
	if len(cidrs) > 0 {
		mac, err := podnet.BridgeMAC(cidrs[0])
		if err != nil {
			return false, err
		}
		spec.HardwareAddr = mac
	}
	return podnet.EnsureBridge(p.h, spec)
}

// Subnets are the global subnets of the node's links other than the
// bridge, routerd's tunnels and loopback.
func (p *podNetwork) Subnets() ([]model.Subnet, error) {
	links, err := p.h.LinkList()
	if err != nil {
		return nil, err
	}
	var out []model.Subnet
	for _, l := range links {
		a := l.Attrs()
		if a.Name == p.cfg.Bridge || strings.HasPrefix(a.Name, model.TunnelPrefix) || a.Flags&unix.IFF_LOOPBACK != 0 {
			continue
		}
		addrs, err := p.h.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if ad.Scope != unix.RT_SCOPE_UNIVERSE || ad.IPNet == nil {
				continue
			}
			ip, ok := netip.AddrFromSlice(ad.IP)
			if !ok {
				continue
			}
			bits, _ := ad.Mask.Size()
			out = append(out, model.Subnet{Prefix: netip.PrefixFrom(ip.Unmap(), bits).Masked(), Link: a.Name})
		}
	}
	return out, nil
}

func (p *podNetwork) LinkMTU(ip netip.Addr) (int, error) {
	addrs, err := p.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return 0, err
	}
	for _, a := range addrs {
		if got, ok := netip.AddrFromSlice(a.IP); ok && got.Unmap() == ip {
			l, err := p.h.LinkByIndex(a.LinkIndex)
			if err != nil {
				return 0, err
			}
			return l.Attrs().MTU, nil
		}
	}
	return 0, fmt.Errorf("no link has address %s", ip)
}

func (p *podNetwork) CNIPodCIDRs() ([]netip.Prefix, error) {
	return podnet.PodCIDRsFromCNI(p.cfg.CNIConfDir)
}

func (p *podNetwork) WriteCNIConfig(cidrs []netip.Prefix, mtu int) (bool, error) {
	data, err := podnet.ConfList(podnet.Config{Bridge: p.cfg.Bridge, MTU: mtu, PodCIDRs: cidrs, PortMap: p.cfg.PortMap, IPAMDataDir: p.cfg.IPAMDataDir})
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(p.cfg.CNIConfDir, 0o755); err != nil {
		return false, err
	}
	return podnet.WriteConfList(p.cfg.CNIConfDir, p.cfg.CNIConfFile, data)
}

func (p *podNetwork) RemoveCNIConfig() error {
	return podnet.RemoveConfList(p.cfg.CNIConfDir, p.cfg.CNIConfFile)
}
