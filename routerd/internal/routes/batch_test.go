package routes

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// decoded is a route message as vishvananda/netlink's decoder reads it:
// an encoder independent of ours.
type decoded struct {
	Type, Flags           uint16
	Seq                   uint32
	Family, DstLen, Table uint8
	Protocol, Scope, Kind uint8
	RtFlags               uint32
	Attrs                 map[uint16]string
}

func decodeAll(tb testing.TB, b []byte) []decoded {
	tb.Helper()
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		tb.Fatalf("parse: %v", err)
	}
	var out []decoded
	for _, m := range msgs {
		rt := nl.DeserializeRtMsg(m.Data)
		attrs, err := nl.ParseRouteAttr(m.Data[rt.Len():])
		if err != nil {
			tb.Fatalf("attributes: %v", err)
		}
		d := decoded{Type: m.Header.Type, Flags: m.Header.Flags, Seq: m.Header.Seq,
			Family: rt.Family, DstLen: rt.Dst_len, Table: rt.Table, Protocol: rt.Protocol, Scope: rt.Scope, Kind: rt.Type,
			RtFlags: rt.Flags, Attrs: map[uint16]string{}}
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.RTA_DST, unix.RTA_GATEWAY:
				d.Attrs[a.Attr.Type] = net.IP(a.Value).String()
			default:
				d.Attrs[a.Attr.Type] = fmt.Sprint(binary.NativeEndian.Uint32(a.Value))
			}
		}
		out = append(out, d)
	}
	return out
}

func TestRouteMessageEncoding(t *testing.T) {
	// The batcher sets NLM_F_ACK on the last message of a batch only.
	const write = unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_REPLACE
	const del = unix.NLM_F_REQUEST
	for _, tc := range []struct {
		name  string
		op    routeOp
		table uint32
		want  decoded
	}{{
		name:  "direct IPv4",
		op:    routeOp{Kind: opAdd, Route: via("198.19.1.0/24", "198.18.0.2")},
		table: mainTable,
		want: decoded{Type: unix.RTM_NEWROUTE, Flags: write, Family: unix.AF_INET, DstLen: 24, Table: mainTable, Protocol: 196,
			Scope: unix.RT_SCOPE_UNIVERSE, Kind: unix.RTN_UNICAST,
			Attrs: map[uint16]string{unix.RTA_TABLE: "254", unix.RTA_DST: "198.19.1.0", unix.RTA_GATEWAY: "198.18.0.2"}},
	}, {
		name:  "direct IPv6 replace",
		op:    routeOp{Kind: opReplace, Route: via("2001:2:0:1001::/64", "2001:2::2")},
		table: mainTable,
		want: decoded{Type: unix.RTM_NEWROUTE, Flags: write, Family: unix.AF_INET6, DstLen: 64, Table: mainTable, Protocol: 196,
			Scope: unix.RT_SCOPE_UNIVERSE, Kind: unix.RTN_UNICAST,
			Attrs: map[uint16]string{unix.RTA_TABLE: "254", unix.RTA_DST: "2001:2:0:1001::", unix.RTA_GATEWAY: "2001:2::2"}},
	}, {
		name:  "into a tunnel, onlink next hop, table ≥ 256",
		op:    routeOp{Kind: opAdd, Route: viaTunnel("198.19.2.0/24", "198.18.2.2"), OIF: 7},
		table: 1000,
		want: decoded{Type: unix.RTM_NEWROUTE, Flags: write, Family: unix.AF_INET, DstLen: 24, Table: unix.RT_TABLE_UNSPEC, Protocol: 196,
			Scope: unix.RT_SCOPE_UNIVERSE, Kind: unix.RTN_UNICAST, RtFlags: unix.RTNH_F_ONLINK,
			Attrs: map[uint16]string{unix.RTA_TABLE: "1000", unix.RTA_DST: "198.19.2.0", unix.RTA_GATEWAY: "198.18.2.2", unix.RTA_OIF: "7"}},
	}, {
		name:  "into a tunnel without next hop: scope link",
		op:    routeOp{Kind: opAdd, Route: model.Route{Prefix: pfx("198.19.3.0/24"), Tunnel: "nnip-x"}, OIF: 7},
		table: mainTable,
		want: decoded{Type: unix.RTM_NEWROUTE, Flags: write, Family: unix.AF_INET, DstLen: 24, Table: mainTable, Protocol: 196,
			Scope: unix.RT_SCOPE_LINK, Kind: unix.RTN_UNICAST,
			Attrs: map[uint16]string{unix.RTA_TABLE: "254", unix.RTA_DST: "198.19.3.0", unix.RTA_OIF: "7"}},
	}, {
		name:  "delete names protocol and metric, not the next hop",
		op:    routeOp{Kind: opDelete, Route: via("2001:2:0:1001::/64", "2001:2::2"), Metric: 1024},
		table: mainTable,
		want: decoded{Type: unix.RTM_DELROUTE, Flags: del, Family: unix.AF_INET6, DstLen: 64, Table: mainTable, Protocol: 196,
			Scope: unix.RT_SCOPE_NOWHERE, Kind: unix.RTN_UNSPEC,
			Attrs: map[uint16]string{unix.RTA_TABLE: "254", unix.RTA_DST: "2001:2:0:1001::", unix.RTA_PRIORITY: "1024"}},
	}, {
		name:  "default route",
		op:    routeOp{Kind: opDelete, Route: via("0.0.0.0/0", "198.18.0.2")},
		table: mainTable,
		want: decoded{Type: unix.RTM_DELROUTE, Flags: del, Family: unix.AF_INET, DstLen: 0, Table: mainTable, Protocol: 196,
			Scope: unix.RT_SCOPE_NOWHERE, Kind: unix.RTN_UNSPEC,
			Attrs: map[uint16]string{unix.RTA_TABLE: "254", unix.RTA_DST: "0.0.0.0"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			b := appendRouteMsg([]byte{0xff}, 42, tc.op, 196, tc.table)[1:] // appends after what is there
			got := decodeAll(t, b)
			tc.want.Seq = 42
			if len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(tc.want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

// fakeConn is a kernel that answers the messages of a send that fail or
// ask for an acknowledgement (NLM_F_ACK) with one datagram each, as
// rtnetlink does.
type fakeConn struct {
	sends  [][]byte
	queue  [][]byte
	answer func(d decoded) (unix.Errno, string)
	// keep, when > 0, is how many acknowledgements of a send fit the
	// receive buffer: the others are dropped and the next read fails
	// with ENOBUFS.
	keep    int
	overrun bool
	tb      testing.TB
}

func (c *fakeConn) send(b []byte) error {
	c.sends = append(c.sends, slices.Clone(b))
	queued := 0
	for _, d := range decodeAll(c.tb, b) {
		var errno unix.Errno
		var msg string
		if c.answer != nil {
			errno, msg = c.answer(d)
		}
		if errno == 0 && d.Flags&unix.NLM_F_ACK == 0 {
			continue
		}
		if c.keep > 0 && queued >= c.keep {
			c.overrun = true
			continue
		}
		queued++
		c.queue = append(c.queue, ackMsg(d.Seq, errno, msg))
	}
	return nil
}

func (c *fakeConn) recv(b []byte, nowait bool) (int, error) {
	if c.overrun {
		c.overrun = false
		return 0, unix.ENOBUFS
	}
	if len(c.queue) == 0 {
		if nowait {
			return 0, unix.EAGAIN
		}
		c.tb.Fatal("read would wait forever")
	}
	n := copy(b, c.queue[0])
	c.queue = c.queue[1:]
	return n, nil
}

// ackMsg is the kernel's NLMSG_ERROR for request seq on a socket with
// NETLINK_CAP_ACK and NETLINK_EXT_ACK.
func ackMsg(seq uint32, errno unix.Errno, msg string) []byte {
	flags := uint16(unix.NLM_F_CAPPED)
	var tlv []byte
	if msg != "" {
		flags |= unix.NLM_F_ACK_TLVS
		tlv = appendAttr(nil, unix.NLMSGERR_ATTR_MSG, append([]byte(msg), 0))
	}
	b := binary.NativeEndian.AppendUint32(nil, 0)
	b = binary.NativeEndian.AppendUint16(b, unix.NLMSG_ERROR)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = binary.NativeEndian.AppendUint32(b, uint32(-int32(errno)))
	// The request's header (capped: no payload).
	b = binary.NativeEndian.AppendUint32(b, 64)
	b = binary.NativeEndian.AppendUint16(b, unix.RTM_NEWROUTE)
	b = binary.NativeEndian.AppendUint16(b, 0)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0)
	b = append(b, tlv...)
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	return b
}

func hostRoutes(n int, op opKind) []routeOp {
	ops := make([]routeOp, n)
	for i := range ops {
		ops[i] = routeOp{Kind: op, Route: model.Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 32), NextHop: addr("198.18.0.2")}}
	}
	return ops
}

// TestBatchOneSendPerBatch: 5000 routes are one sendmsg of 5000
// messages, with increasing sequence numbers, and every outcome lands on
// its route: a refused next hop fails alone, with the kernel's words.
func TestBatchOneSendPerBatch(t *testing.T) {
	ops := hostRoutes(5000, opAdd)
	bad := ops[1234].Route.Prefix.Addr().String()
	c := &fakeConn{tb: t, answer: func(d decoded) (unix.Errno, string) {
		if d.Attrs[unix.RTA_DST] == bad {
			return unix.ENETUNREACH, "Nexthop has invalid gateway"
		}
		return 0, ""
	}}
	bt := newBatcher(c, Config{Protocol: 196, Table: mainTable}, 1<<20, 8192)
	errs, msgs, err := bt.run(ops)
	if err != nil || msgs != 5000 {
		t.Fatalf("run: %d messages, %v", msgs, err)
	}
	if len(c.sends) != 1 {
		t.Fatalf("%d sends, want 1", len(c.sends))
	}
	sent := decodeAll(t, c.sends[0])
	if len(sent) != 5000 || sent[0].Seq+4999 != sent[4999].Seq {
		t.Fatalf("one send of %d messages, seq %d…%d", len(sent), sent[0].Seq, sent[len(sent)-1].Seq)
	}
	for i, e := range errs {
		switch {
		case i == 1234:
			if !errors.Is(e, unix.ENETUNREACH) || e.Error() != "network is unreachable (Nexthop has invalid gateway)" {
				t.Errorf("route %d: %v, want ENETUNREACH with the kernel's message", i, e)
			}
		case e != nil:
			t.Errorf("route %d: %v", i, e)
		}
	}
	// The next batch goes on with fresh sequence numbers.
	if _, _, err := bt.run(ops[:1]); err != nil || decodeAll(t, c.sends[1])[0].Seq != sent[4999].Seq+1 {
		t.Fatalf("second batch: %v, seq %d", err, decodeAll(t, c.sends[1])[0].Seq)
	}
}

// TestBatchLimits: a batch bigger than the buffers is split into sends
// that fit them.
func TestBatchLimits(t *testing.T) {
	for _, tc := range []struct {
		maxBytes, maxMsgs int
		wantSends         []int
	}{
		{1 << 20, 400, []int{400, 400, 200}},
		{52 * 300, 8192, []int{300, 300, 300, 100}}, // an IPv4 route with a gateway is 52 bytes
		{10, 8192, slices.Repeat([]int{1}, 1000)},   // one message always goes
	} {
		c := &fakeConn{tb: t}
		bt := newBatcher(c, Config{Protocol: 196, Table: mainTable}, tc.maxBytes, tc.maxMsgs)
		errs, msgs, err := bt.run(hostRoutes(1000, opAdd))
		if err != nil || msgs != 1000 || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
			t.Fatalf("limits %d bytes %d messages: %d sent, %v %v", tc.maxBytes, tc.maxMsgs, msgs, err, errs)
		}
		var sizes []int
		for _, s := range c.sends {
			sizes = append(sizes, len(decodeAll(t, s)))
			if len(s) > tc.maxBytes && len(decodeAll(t, s)) > 1 {
				t.Errorf("a send of %d bytes, limit %d", len(s), tc.maxBytes)
			}
		}
		if !slices.Equal(sizes, tc.wantSends) {
			t.Errorf("limits %d bytes %d messages: sends of %v, want %v", tc.maxBytes, tc.maxMsgs, sizes, tc.wantSends)
		}
	}
}

// TestBatchAcknowledgesTheLastMessageOnly: every message of a batch but
// the last goes without NLM_F_ACK (the kernel answers failures anyway).
func TestBatchAcknowledgesTheLastMessageOnly(t *testing.T) {
	c := &fakeConn{tb: t}
	bt := newBatcher(c, Config{Protocol: 196, Table: mainTable}, 1<<20, 40)
	if _, _, err := bt.run(hostRoutes(100, opAdd)); err != nil {
		t.Fatal(err)
	}
	for i, s := range c.sends {
		ms := decodeAll(t, s)
		for j, m := range ms {
			if (m.Flags&unix.NLM_F_ACK != 0) != (j == len(ms)-1) {
				t.Errorf("send %d message %d of %d: flags %#x", i, j, len(ms), m.Flags)
			}
		}
	}
}

// TestBatchLostAcks: when the kernel dropped answers (ENOBUFS), the
// failures it kept still count, every message without an answer is
// unknown (errNoAck: a failure may have been dropped), and the batch
// reports the loss; the rest of the ops are not sent.
func TestBatchLostAcks(t *testing.T) {
	c := &fakeConn{tb: t, keep: 5, answer: func(d decoded) (unix.Errno, string) {
		if d.Seq%10 == 0 {
			return unix.ENETUNREACH, ""
		}
		return 0, ""
	}}
	bt := newBatcher(c, Config{Protocol: 196, Table: mainTable}, 1<<20, 100)
	errs, msgs, err := bt.run(hostRoutes(120, opAdd))
	if !errors.Is(err, unix.ENOBUFS) || msgs != 100 || len(c.sends) != 1 {
		t.Fatalf("run: %d sent in %d sends, %v; want 100 in 1, ENOBUFS", msgs, len(c.sends), err)
	}
	failed, unknown := 0, 0
	for i, e := range errs {
		switch {
		case errors.Is(e, unix.ENETUNREACH):
			failed++
		case errors.Is(e, errNoAck):
			unknown++
		default:
			t.Errorf("route %d: %v, want its failure or unknown", i, e)
		}
	}
	if failed != 5 || unknown != 115 {
		t.Errorf("%d failures kept, %d unknown; want 5 and 115", failed, unknown)
	}
}

// TestBatchDeleteOfMissingRoute: ESRCH for a delete is what was asked.
func TestBatchDeleteOfMissingRoute(t *testing.T) {
	c := &fakeConn{tb: t, answer: func(decoded) (unix.Errno, string) { return unix.ESRCH, "" }}
	bt := newBatcher(c, Config{Protocol: 196, Table: mainTable}, 1<<20, 64)
	errs, _, err := bt.run(append(hostRoutes(2, opDelete), hostRoutes(1, opAdd)...))
	if err != nil || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], unix.ESRCH) {
		t.Fatalf("run: %v %v", errs, err)
	}
}

// TestParseAck: stray and late acknowledgements (sequence numbers of
// another batch) are skipped; an uncapped error acknowledgement (the
// request copied whole) is read too.
func TestParseAck(t *testing.T) {
	c := &fakeConn{tb: t}
	bt := newBatcher(c, Config{Protocol: 196, Table: mainTable}, 1<<20, 64)
	c.queue = append(c.queue, ackMsg(999, unix.EINVAL, "late"))
	// Uncapped: the header says so by lacking NLM_F_CAPPED; the request
	// (header + 12 bytes of rtmsg) is copied, then the attributes.
	uncapped := ackMsg(1, unix.EEXIST, "")
	binary.NativeEndian.PutUint16(uncapped[6:], unix.NLM_F_ACK_TLVS)
	binary.NativeEndian.PutUint32(uncapped[20:], 28)
	uncapped = append(uncapped, make([]byte, 12)...)
	uncapped = appendAttr(uncapped, unix.NLMSGERR_ATTR_MSG, []byte("File exists\x00"))
	binary.NativeEndian.PutUint32(uncapped, uint32(len(uncapped)))
	errs := make([]error, 2)
	c.queue = append(c.queue, uncapped, ackMsg(2, 0, ""))
	if err := bt.acks(1, hostRoutes(2, opAdd), errs); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(errs[0], unix.EEXIST) || errs[0].Error() != "file exists (File exists)" || errs[1] != nil {
		t.Fatalf("errs = %v", errs)
	}
}
