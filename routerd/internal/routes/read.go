package routes

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// dumpAttempts bounds the retries of a dump the kernel interrupted (the
// table changed while it was read: NLM_F_DUMP_INTR).
const dumpAttempts = 5

// readKernel reads what routerd owns: links named with the prefix first
// (routes name their link by index), then the routes of protocol in table.
func readKernel(h *netlink.Handle, protocol uint8, table int) (state, error) {
	st := newState()
	links, err := retryDump(h.LinkList)
	if err != nil {
		return st, fmt.Errorf("link dump: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		if !strings.HasPrefix(a.Name, model.TunnelPrefix) {
			continue
		}
		names[a.Index] = a.Name
		st.tunnels[a.Name] = tunnelOf(l)
	}
	filter := &netlink.Route{Protocol: netlink.RouteProtocol(protocol), Table: table}
	routes, err := retryDump(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return st, fmt.Errorf("route dump: %w", err)
	}
	for _, r := range routes {
		key, kr, ok := routeOf(r, names)
		if !ok {
			continue
		}
		st.routes[key] = kr
	}
	return st, nil
}

// retryDump repeats a dump the kernel interrupted.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	var err error
	for range dumpAttempts {
		var out []T
		out, err = dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return nil, err
}

// tunnelOf converts a link named with the prefix.
func tunnelOf(l netlink.Link) ktunnel {
	a := l.Attrs()
	t := ktunnel{Tunnel: model.Tunnel{Name: a.Name, MTU: a.MTU}, Index: a.Index, Up: a.Flags&net.FlagUp != 0}
	if ip, ok := l.(*netlink.Iptun); ok && !ip.FlowBased {
		t.IPIP = true
		t.Local, t.Remote = addrOf(ip.Local).Unmap(), addrOf(ip.Remote).Unmap()
		if t.Local.IsUnspecified() {
			t.Local = netip.Addr{}
		}
	}
	return t
}

// routeOf converts a route of routerd's protocol. A route through a link
// routerd owns with no gateway or an onlink one is a tunnel route; one
// with a gateway and without onlink is a direct route, whatever link the
// kernel resolved. Any other shape is odd: rewritten when desired, deleted
// otherwise.
func routeOf(r netlink.Route, tunnels map[int]string) (rkey, kroute, bool) {
	// vishvananda/netlink gives the default route's Dst as a 16-byte
	// 0.0.0.0 (or nil): IPv4 addresses are unmapped by family.
	v4 := r.Family == unix.AF_INET
	addr := func(ip net.IP) netip.Addr {
		a := addrOf(ip)
		if v4 {
			a = a.Unmap()
		}
		return a
	}
	var p netip.Prefix
	switch {
	case r.Dst != nil:
		bits, _ := r.Dst.Mask.Size()
		p = netip.PrefixFrom(addr(r.Dst.IP), bits)
	case r.Family == unix.AF_INET:
		p = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	case r.Family == unix.AF_INET6:
		p = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	if !p.IsValid() {
		return rkey{}, kroute{}, false // not IP (MPLS): never written by routerd
	}
	kr := kroute{Route: model.Route{Prefix: p, NextHop: addr(r.Gw)}}
	onlink := r.Flags&unix.RTNH_F_ONLINK != 0
	name, viaTunnel := tunnels[r.LinkIndex]
	switch {
	case viaTunnel && (onlink || !kr.NextHop.IsValid()):
		kr.Tunnel = name
	case kr.NextHop.IsValid() && !onlink:
	default:
		kr.odd = true
	}
	if r.Type != unix.RTN_UNICAST || len(r.MultiPath) > 0 || r.Tos != 0 || r.Src != nil {
		kr.odd = true
	}
	return rkey{p, uint32(r.Priority)}, kr, true
}

// addrOf converts a net.IP as the kernel gave it (4 bytes for IPv4, 16
// for IPv6; nil gives the zero Addr).
func addrOf(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a
}
