// Package conntrack deletes the conntrack entries of UDP real servers proxyd
// removed. UDP has no connection end: without this, a client that keeps
// sending from the same port stays pinned to a backend that is gone.
package conntrack

import (
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Flow names the conntrack entries of one removed UDP real server: traffic
// to VIP:Port that IPVS sent to Backend.
type Flow struct {
	VIP     netip.Addr
	Port    uint16
	Backend netip.Addr
}

// Interface deletes the entries of removed UDP real servers.
type Interface interface {
	// DeleteUDP deletes every entry of the flows and returns how many.
	DeleteUDP(flows []Flow) (uint, error)
}

// Netlink implements Interface over a netlink handle (the node's namespace,
// or a test's).
type Netlink struct {
	Handle *netlink.Handle
}

var _ Interface = (*Netlink)(nil)

// DeleteUDP is part of Interface. The kernel is asked for its table once
// per family however many flows there are: the netlink delete-by-filter
// walks the whole table on each call.
func (n *Netlink) DeleteUDP(flows []Flow) (uint, error) {
	var v4, v6 []netlink.CustomConntrackFilter
	for _, f := range flows {
		filter := &netlink.ConntrackFilter{}
		// The errors below only report a filter type set twice.
		_ = filter.AddProtocol(unix.IPPROTO_UDP)
		_ = filter.AddIP(netlink.ConntrackOrigDstIP, net.IP(f.VIP.AsSlice()))
		_ = filter.AddPort(netlink.ConntrackOrigDstPort, f.Port)
		_ = filter.AddIP(netlink.ConntrackReplySrcIP, net.IP(f.Backend.AsSlice()))
		if f.VIP.Is4() {
			v4 = append(v4, filter)
		} else {
			v6 = append(v6, filter)
		}
	}
	var total uint
	for _, set := range []struct {
		family  netlink.InetFamily
		filters []netlink.CustomConntrackFilter
	}{{unix.AF_INET, v4}, {unix.AF_INET6, v6}} {
		if len(set.filters) == 0 {
			continue
		}
		n, err := n.Handle.ConntrackDeleteFilters(netlink.ConntrackTable, set.family, set.filters...)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Fake records the flows it was asked to delete.
type Fake struct {
	Deleted []Flow
}

var _ Interface = (*Fake)(nil)

// DeleteUDP is part of Interface.
func (f *Fake) DeleteUDP(flows []Flow) (uint, error) {
	f.Deleted = append(f.Deleted, flows...)
	return uint(len(flows)), nil
}
