package vip

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// loopbackIndex is lo's interface index. The kernel gives lo index 1 in
// every network namespace (LOOPBACK_IFINDEX, include/net/net_namespace.h;
// loopback_net_init refuses any other), so no lookup is needed.
const loopbackIndex = 1

// The messages are encoded here rather than with netlink.Handle's route
// calls because those send one request and wait for its answer; a batch
// is many requests in one write (see Kernel). Layout: struct nlmsghdr,
// struct rtmsg, then the attributes (linux/rtnetlink.h).

// appendRouteMsg appends one RTM_NEWROUTE or RTM_DELROUTE request for vip
// with sequence number seq to b. ack asks the kernel for an answer even
// when it succeeds; without it the kernel answers only errors.
func appendRouteMsg(b []byte, typ uint16, vip netip.Addr, seq uint32, ack bool) []byte {
	flags := uint16(unix.NLM_F_REQUEST)
	if ack {
		flags |= unix.NLM_F_ACK
	}
	rt := unix.RtMsg{
		Family:   familyOf(vip),
		Dst_len:  uint8(vip.BitLen()),
		Table:    unix.RT_TABLE_LOCAL,
		Protocol: RouteProtocol,
		Type:     unix.RTN_LOCAL,
	}
	if typ == unix.RTM_NEWROUTE {
		// CREATE|EXCL: an existing route with the same key is reported
		// (EEXIST), never replaced: it may be someone else's.
		flags |= unix.NLM_F_CREATE | unix.NLM_F_EXCL
		rt.Scope = unix.RT_SCOPE_HOST
	} else {
		// Any scope; the protocol (and type and table) pick the route.
		rt.Scope = unix.RT_SCOPE_NOWHERE
	}
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0) // length, set below
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel's
	b = appendRtMsg(b, rt)
	b = appendAttr(b, unix.RTA_DST, vip.AsSlice())
	if typ == unix.RTM_NEWROUTE {
		b = appendAttr(b, unix.RTA_OIF, binary.NativeEndian.AppendUint32(nil, loopbackIndex))
		b = appendAttr(b, unix.RTA_PRIORITY, binary.NativeEndian.AppendUint32(nil, RouteMetric))
	}
	// A delete names neither device nor metric: a route of proxyd's
	// protocol for the VIP is proxyd's, whatever an older version chose.
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// appendDumpMsg appends an RTM_GETROUTE dump request for the local table's
// routes of proxyd's protocol and type local. With NETLINK_GET_STRICT_CHK
// on the socket the kernel filters by these header fields itself and sends
// only proxyd's routes (ip_valid_fib_dump_req); without it the kernel
// sends every route and parseRoute filters.
func appendDumpMsg(b []byte, family uint8, seq uint32) []byte {
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint16(b, unix.RTM_GETROUTE)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = appendRtMsg(b, unix.RtMsg{
		Family:   family,
		Table:    unix.RT_TABLE_LOCAL,
		Protocol: RouteProtocol,
		Type:     unix.RTN_LOCAL,
	})
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

func appendRtMsg(b []byte, rt unix.RtMsg) []byte {
	b = append(b, rt.Family, rt.Dst_len, rt.Src_len, rt.Tos, rt.Table, rt.Protocol, rt.Scope, rt.Type)
	return binary.NativeEndian.AppendUint32(b, rt.Flags)
}

// appendAttr appends a route attribute (struct rtattr and its value, padded
// to 4 bytes).
func appendAttr(b []byte, typ uint16, value []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(unix.SizeofRtAttr+len(value)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, value...)
	for len(b)%unix.RTA_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

func familyOf(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// parseRoute returns the VIP an RTM_NEWROUTE message of a dump describes,
// and whether it is one of proxyd's: a local route of RouteProtocol in the
// local table to a single address of the family asked for. The kernel has
// filtered already when it honours strict checking; this checks again so
// that a kernel that does not is still answered correctly.
func parseRoute(data []byte, family uint8) (netip.Addr, bool, error) {
	if len(data) < unix.SizeofRtMsg {
		return netip.Addr{}, false, fmt.Errorf("route message of %d bytes", len(data))
	}
	rt := nl.DeserializeRtMsg(data)
	if rt.Family != family || rt.Protocol != RouteProtocol || rt.Type != unix.RTN_LOCAL ||
		rt.Flags&unix.RTM_F_CLONED != 0 {
		return netip.Addr{}, false, nil
	}
	table := uint32(rt.Table)
	var dst netip.Addr
	err := eachAttr(data[unix.SizeofRtMsg:], func(typ uint16, value []byte) {
		switch typ {
		case unix.RTA_TABLE:
			if len(value) == 4 {
				table = binary.NativeEndian.Uint32(value)
			}
		case unix.RTA_DST:
			dst, _ = netip.AddrFromSlice(value)
		}
	})
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("route attributes: %w", err)
	}
	if table != unix.RT_TABLE_LOCAL || !dst.IsValid() || int(rt.Dst_len) != dst.BitLen() {
		return netip.Addr{}, false, nil
	}
	return dst, true, nil
}

// routeTable returns the table of a route message (RTA_TABLE when the
// kernel sent it, which it does for every route; else rtm_table), 0 for a
// message too short to say.
func routeTable(data []byte) uint32 {
	if len(data) < unix.SizeofRtMsg {
		return 0
	}
	table := uint32(nl.DeserializeRtMsg(data).Table)
	_ = eachAttr(data[unix.SizeofRtMsg:], func(typ uint16, value []byte) {
		if typ == unix.RTA_TABLE && len(value) == 4 {
			table = binary.NativeEndian.Uint32(value)
		}
	})
	return table
}

// ackError returns the error an NLMSG_ERROR message reports, nil for an
// acknowledgement. The kernel's extended ack message, when it sent one
// (NETLINK_EXT_ACK), is added to the errno, which errors.Is still finds.
func ackError(m syscall.NetlinkMessage) error {
	if len(m.Data) < 4 {
		return fmt.Errorf("netlink error message of %d bytes", len(m.Data))
	}
	errno := -int32(binary.NativeEndian.Uint32(m.Data))
	if errno == 0 {
		return nil
	}
	err := error(unix.Errno(errno))
	if m.Header.Flags&unix.NLM_F_ACK_TLVS == 0 {
		return err
	}
	// struct nlmsgerr: the errno, then the request's header, then (not
	// with NETLINK_CAP_ACK: NLM_F_CAPPED) the rest of the request, then
	// the attributes.
	rest := m.Data[4:]
	if len(rest) < unix.SizeofNlMsghdr {
		return err
	}
	skip := unix.SizeofNlMsghdr
	if m.Header.Flags&unix.NLM_F_CAPPED == 0 {
		skip = nlmAlign(int(binary.NativeEndian.Uint32(rest)))
	}
	if skip > len(rest) {
		return err
	}
	_ = eachAttr(rest[skip:], func(typ uint16, value []byte) {
		if typ == unix.NLMSGERR_ATTR_MSG {
			err = fmt.Errorf("%w (%s)", err, unix.ByteSliceToString(value))
		}
	})
	return err
}

// eachAttr calls f with the type and value of every attribute in b (struct
// rtattr or nlattr: they share a layout) without allocating, which matters
// when a dump has 30k routes. The flag bits of nlattr types are cleared.
func eachAttr(b []byte, f func(typ uint16, value []byte)) error {
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofRtAttr || n > len(b) {
			return fmt.Errorf("attribute length %d of %d bytes left", n, len(b))
		}
		f(binary.NativeEndian.Uint16(b[2:])&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER), b[unix.SizeofRtAttr:n])
		b = b[min(rtaAlign(n), len(b)):]
	}
	return nil
}

func rtaAlign(n int) int {
	return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
}

func nlmAlign(n int) int {
	return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1)
}
