package vip

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Test addresses: VIPs in 198.19.0.0/16 and 2001:db8:19::/64.

// libRouteMsg builds the request with the netlink library's own encoder,
// as `ip route add local <vip> dev lo table local proto 79 scope host
// metric 79` (or del) would send it, to check appendRouteMsg against.
func libRouteMsg(typ uint16, vip netip.Addr, seq uint32, ack bool) []byte {
	flags := 0
	if typ == unix.RTM_NEWROUTE {
		flags |= unix.NLM_F_CREATE | unix.NLM_F_EXCL
	}
	if ack {
		flags |= unix.NLM_F_ACK
	}
	req := nl.NewNetlinkRequest(int(typ), flags)
	req.Seq = seq
	msg := &nl.RtMsg{RtMsg: unix.RtMsg{
		Family: familyOf(vip), Dst_len: uint8(vip.BitLen()), Table: unix.RT_TABLE_LOCAL,
		Protocol: RouteProtocol, Scope: unix.RT_SCOPE_HOST, Type: unix.RTN_LOCAL,
	}}
	if typ == unix.RTM_DELROUTE {
		msg.Scope = unix.RT_SCOPE_NOWHERE
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_DST, vip.AsSlice()))
	if typ == unix.RTM_NEWROUTE {
		req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(loopbackIndex)))
		req.AddData(nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(RouteMetric)))
	}
	return req.Serialize()
}

func TestAppendRouteMsgMatchesTheLibrary(t *testing.T) {
	for _, vip := range []string{"198.19.0.10", "2001:db8:19::10"} {
		for _, typ := range []uint16{unix.RTM_NEWROUTE, unix.RTM_DELROUTE} {
			for _, ack := range []bool{false, true} {
				a := netip.MustParseAddr(vip)
				got := appendRouteMsg(nil, typ, a, 42, ack)
				want := libRouteMsg(typ, a, 42, ack)
				if !bytes.Equal(got, want) {
					t.Errorf("%s type %d ack %v:\n got %x\nwant %x", vip, typ, ack, got, want)
				}
			}
		}
	}
}

func TestAppendRouteMsgBatches(t *testing.T) {
	a, b := netip.MustParseAddr("198.19.0.1"), netip.MustParseAddr("2001:db8:19::1")
	buf := appendRouteMsg(nil, unix.RTM_NEWROUTE, a, 1, false)
	buf = appendRouteMsg(buf, unix.RTM_NEWROUTE, b, 2, true)
	msgs, err := syscall.ParseNetlinkMessage(buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Header.Seq != 1 || msgs[1].Header.Seq != 2 {
		t.Fatalf("messages %+v, want seq 1 and 2", msgs)
	}
	if msgs[0].Header.Flags&unix.NLM_F_ACK != 0 || msgs[1].Header.Flags&unix.NLM_F_ACK == 0 {
		t.Fatalf("flags %#x %#x: only the last asks for an ack", msgs[0].Header.Flags, msgs[1].Header.Flags)
	}
}

func TestAppendDumpMsg(t *testing.T) {
	req := nl.NewNetlinkRequest(unix.RTM_GETROUTE, unix.NLM_F_DUMP)
	req.Seq = 9
	req.AddData(&nl.RtMsg{RtMsg: unix.RtMsg{Family: unix.AF_INET6, Table: unix.RT_TABLE_LOCAL,
		Protocol: RouteProtocol, Type: unix.RTN_LOCAL}})
	if got, want := appendDumpMsg(nil, unix.AF_INET6, 9), req.Serialize(); !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
}

// routeData is the payload of an RTM_NEWROUTE message of a dump.
func routeData(rt unix.RtMsg, attrs ...*nl.RtAttr) []byte {
	b := (&nl.RtMsg{RtMsg: rt}).Serialize()
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

func TestParseRoute(t *testing.T) {
	v4 := netip.MustParseAddr("198.19.0.10")
	v6 := netip.MustParseAddr("2001:db8:19::10")
	ours4 := unix.RtMsg{Family: unix.AF_INET, Dst_len: 32, Table: unix.RT_TABLE_LOCAL,
		Protocol: RouteProtocol, Scope: unix.RT_SCOPE_HOST, Type: unix.RTN_LOCAL}
	ours6 := ours4
	ours6.Family, ours6.Dst_len = unix.AF_INET6, 128
	dst4 := nl.NewRtAttr(unix.RTA_DST, v4.AsSlice())
	dst6 := nl.NewRtAttr(unix.RTA_DST, v6.AsSlice())
	with := func(rt unix.RtMsg, f func(*unix.RtMsg)) unix.RtMsg { f(&rt); return rt }
	for _, tc := range []struct {
		name   string
		data   []byte
		family uint8
		want   netip.Addr // invalid: not ours
	}{
		{"ours v4", routeData(ours4, dst4), unix.AF_INET, v4},
		{"ours v6", routeData(ours6, dst6), unix.AF_INET6, v6},
		{"table in RTA_TABLE", routeData(with(ours4, func(r *unix.RtMsg) { r.Table = unix.RT_TABLE_UNSPEC }),
			dst4, nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(unix.RT_TABLE_LOCAL))), unix.AF_INET, v4},
		{"other protocol", routeData(with(ours4, func(r *unix.RtMsg) { r.Protocol = unix.RTPROT_KERNEL }), dst4), unix.AF_INET, netip.Addr{}},
		{"routerd's", routeData(with(ours4, func(r *unix.RtMsg) { r.Protocol = 78 }), dst4), unix.AF_INET, netip.Addr{}},
		{"main table", routeData(with(ours4, func(r *unix.RtMsg) { r.Table = unix.RT_TABLE_MAIN }), dst4), unix.AF_INET, netip.Addr{}},
		{"table 1000", routeData(with(ours4, func(r *unix.RtMsg) { r.Table = unix.RT_TABLE_UNSPEC }),
			dst4, nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(1000))), unix.AF_INET, netip.Addr{}},
		{"unicast", routeData(with(ours4, func(r *unix.RtMsg) { r.Type = unix.RTN_UNICAST }), dst4), unix.AF_INET, netip.Addr{}},
		{"a prefix", routeData(with(ours4, func(r *unix.RtMsg) { r.Dst_len = 24 }), dst4), unix.AF_INET, netip.Addr{}},
		{"cloned", routeData(with(ours6, func(r *unix.RtMsg) { r.Flags = unix.RTM_F_CLONED }), dst6), unix.AF_INET6, netip.Addr{}},
		{"other family", routeData(ours6, dst6), unix.AF_INET, netip.Addr{}},
		{"no destination", routeData(ours4), unix.AF_INET, netip.Addr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ours, err := parseRoute(tc.data, tc.family)
			if err != nil {
				t.Fatal(err)
			}
			if ours != tc.want.IsValid() || got != tc.want {
				t.Fatalf("parseRoute = %v, %v; want %v, %v", got, ours, tc.want, tc.want.IsValid())
			}
		})
	}
	if _, _, err := parseRoute([]byte{1, 2}, unix.AF_INET); err == nil {
		t.Fatal("short message: no error")
	}
}

// errMsg is an NLMSG_ERROR answer to req with errno and, if text is not
// empty, an extended ack message; capped leaves out the request's payload
// as NETLINK_CAP_ACK does.
func errMsg(req []byte, errno int32, text string, capped bool) syscall.NetlinkMessage {
	var flags uint16
	data := binary.NativeEndian.AppendUint32(nil, uint32(-errno))
	if capped {
		data = append(data, req[:unix.SizeofNlMsghdr]...)
		flags |= unix.NLM_F_CAPPED
	} else {
		data = append(data, req...)
	}
	if text != "" {
		flags |= unix.NLM_F_ACK_TLVS
		data = append(data, nl.NewRtAttr(unix.NLMSGERR_ATTR_MSG, nl.ZeroTerminated(text)).Serialize()...)
	}
	return syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.NLMSG_ERROR, Flags: flags}, Data: data}
}

func TestAckError(t *testing.T) {
	req := appendRouteMsg(nil, unix.RTM_NEWROUTE, netip.MustParseAddr("198.19.0.1"), 3, true)
	if err := ackError(errMsg(req, 0, "", true)); err != nil {
		t.Fatalf("ack: %v", err)
	}
	for _, capped := range []bool{true, false} {
		err := ackError(errMsg(req, int32(unix.EEXIST), "", capped))
		if !errors.Is(err, unix.EEXIST) {
			t.Errorf("capped %v: %v, want EEXIST", capped, err)
		}
		err = ackError(errMsg(req, int32(unix.EINVAL), "Invalid scope", capped))
		if !errors.Is(err, unix.EINVAL) || err.Error() != "invalid argument (Invalid scope)" {
			t.Errorf("capped %v: %q, want EINVAL with the kernel's message", capped, err)
		}
	}
	if err := ackError(syscall.NetlinkMessage{Data: []byte{1}}); err == nil {
		t.Error("short error message: no error")
	}
}

func TestRouteTable(t *testing.T) {
	rt := unix.RtMsg{Family: unix.AF_INET, Table: unix.RT_TABLE_MAIN}
	if got := routeTable(routeData(rt)); got != unix.RT_TABLE_MAIN {
		t.Errorf("rtm_table only: %d", got)
	}
	rt.Table = unix.RT_TABLE_UNSPEC
	if got := routeTable(routeData(rt, nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(unix.RT_TABLE_LOCAL)))); got != unix.RT_TABLE_LOCAL {
		t.Errorf("RTA_TABLE: %d", got)
	}
	if got := routeTable([]byte{1}); got != 0 {
		t.Errorf("short: %d", got)
	}
}

func TestEachAttrRejectsBadLengths(t *testing.T) {
	good := nl.NewRtAttr(unix.RTA_DST, []byte{198, 19, 0, 1}).Serialize()
	for _, b := range [][]byte{
		{2, 0, 1, 0},                // shorter than its header
		{9, 0, 1, 0, 1, 2, 3, 4},    // longer than what is left
		append(good, 0xff, 0, 1, 0), // a bad one after a good one
	} {
		if err := eachAttr(b, func(uint16, []byte) {}); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
	var n int
	if err := eachAttr(append(good, good...), func(typ uint16, v []byte) { n++ }); err != nil || n != 2 {
		t.Errorf("two attributes: %d, %v", n, err)
	}
}
