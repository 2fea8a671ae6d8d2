package routes

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Route messages are encoded here rather than through vishvananda/netlink,
// which sends one request and waits for its answer per route: at 5k routes
// that costs about twice a batch (../shared/PITFALLS.md). A batch is many
// RTM_NEWROUTE/RTM_DELROUTE messages back to back in one sendmsg; the
// kernel's rtnetlink handles them one by one within that call, in order.
// It answers a message that fails whether or not it asked for an
// acknowledgement, so only the last message of a batch asks for one
// (NLM_F_ACK): when that answer is read, every failure of the batch was
// read before it, matched back by sequence number (a route the kernel
// refuses fails alone), and every message not answered succeeded.
// Composing and reading 5000 acknowledgements cost ≈20% of a batch.

// transport is the socket under a batcher (a netlink socket, or a test's
// recording of what was sent).
type transport interface {
	// send writes b with one sendmsg.
	send(b []byte) error
	// recv reads one datagram into b; without waiting when nowait is
	// set (EAGAIN when there is none).
	recv(b []byte, nowait bool) (int, error)
}

// batcher sends route messages in batches as big as its limits allow.
type batcher struct {
	t        transport
	protocol uint8
	table    uint32
	// maxBytes and maxMsgs bound one sendmsg: the send buffer must hold
	// the batch, the receive buffer its acknowledgements.
	maxBytes, maxMsgs int
	seq               uint32
	buf, rbuf         []byte
	// sends counts the sendmsg calls (for tests and benchmarks).
	sends int
}

func newBatcher(t transport, cfg Config, maxBytes, maxMsgs int) *batcher {
	return &batcher{t: t, protocol: cfg.Protocol, table: uint32(cfg.Table),
		maxBytes: maxBytes, maxMsgs: maxMsgs, rbuf: make([]byte, 64<<10)}
}

// run sends ops and returns the outcome of each (see backend.writeRoutes)
// and the number of messages sent.
func (bt *batcher) run(ops []routeOp) (errs []error, msgs int, err error) {
	errs = make([]error, len(ops))
	for start := 0; start < len(ops); {
		base := bt.seq + 1
		bt.buf = bt.buf[:0]
		n, lastAt := 0, 0
		for start+n < len(ops) && n < bt.maxMsgs {
			before := len(bt.buf)
			bt.buf = appendRouteMsg(bt.buf, base+uint32(n), ops[start+n], bt.protocol, bt.table)
			if len(bt.buf) > bt.maxBytes && n > 0 {
				bt.buf = bt.buf[:before]
				break
			}
			lastAt = before
			n++
		}
		// The last message asks for the acknowledgement that ends the
		// batch's answers.
		flags := binary.NativeEndian.Uint16(bt.buf[lastAt+6:])
		binary.NativeEndian.PutUint16(bt.buf[lastAt+6:], flags|unix.NLM_F_ACK)
		bt.seq += uint32(n)
		bt.sends++
		if err := bt.t.send(bt.buf); err != nil {
			fillNoAck(errs[start:])
			return errs, msgs, fmt.Errorf("send %d route messages (%d bytes): %w", n, len(bt.buf), err)
		}
		msgs += n
		if err := bt.acks(base, ops[start:start+n], errs[start:start+n]); err != nil {
			fillNoAck(errs[start+n:])
			return errs, msgs, err
		}
		start += n
	}
	return errs, msgs, nil
}

func fillNoAck(errs []error) {
	for i := range errs {
		errs[i] = errNoAck
	}
}

// acks reads the answers to the messages base, base+1, … of ops into
// errs, up to the acknowledgement of the last one. Answers of other
// sequence numbers (late ones of an earlier batch that failed) are
// skipped.
func (bt *batcher) acks(base uint32, ops []routeOp, errs []error) error {
	answered := make([]bool, len(ops))
	last := len(ops) - 1
	// lost is set when the kernel dropped answers (ENOBUFS: the receive
	// buffer was too small). The ones it kept are all queued already (the
	// kernel handles the whole batch within sendmsg): they are read
	// without waiting; a failure may be among those dropped, so every
	// message without an answer is unknown.
	var lost error
	for !answered[last] {
		n, err := bt.t.recv(bt.rbuf, lost != nil)
		if errors.Is(err, unix.ENOBUFS) && lost == nil {
			lost = err
			continue
		}
		if err != nil {
			if lost != nil {
				err = lost
			}
			unknown(errs, answered)
			return fmt.Errorf("read the answers of %d route messages: %w", len(ops), err)
		}
		for b := bt.rbuf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				break
			}
			seq, errno, ok := parseAck(b[:l])
			b = b[min(nlmAlign(l), len(b)):]
			if !ok || seq-base >= uint32(len(ops)) || answered[seq-base] {
				continue
			}
			i := int(seq - base)
			answered[i] = true
			if errno != nil && !(ops[i].Kind == opDelete && errors.Is(errno, unix.ESRCH)) {
				// A delete of a route that is gone already did
				// what was asked.
				errs[i] = errno
			}
		}
	}
	if lost != nil {
		unknown(errs, answered)
		return fmt.Errorf("read the answers of %d route messages: %w", len(ops), lost)
	}
	return nil
}

// unknown marks the messages without an answer as unknown.
func unknown(errs []error, answered []bool) {
	for i := range errs {
		if !answered[i] {
			errs[i] = errNoAck
		}
	}
}

// parseAck decodes an NLMSG_ERROR message: the sequence number of the
// request it answers and its error (nil for an acknowledgement), with the
// kernel's extended message when there is one.
func parseAck(m []byte) (seq uint32, err error, ok bool) {
	hdr := m[:unix.SizeofNlMsghdr]
	if binary.NativeEndian.Uint16(hdr[4:]) != unix.NLMSG_ERROR {
		return 0, nil, false
	}
	flags := binary.NativeEndian.Uint16(hdr[6:])
	body := m[unix.SizeofNlMsghdr:]
	if len(body) < 4+unix.SizeofNlMsghdr {
		return 0, nil, false
	}
	code := int32(binary.NativeEndian.Uint32(body))
	orig := body[4:]
	seq = binary.NativeEndian.Uint32(orig[8:])
	if code == 0 {
		return seq, nil, true
	}
	errno := unix.Errno(-code)
	// The request follows, whole unless the socket asked for capped
	// acknowledgements (NETLINK_CAP_ACK); then the extended ack's
	// attributes (NETLINK_EXT_ACK).
	skip := unix.SizeofNlMsghdr
	if flags&unix.NLM_F_CAPPED == 0 {
		skip = nlmAlign(int(binary.NativeEndian.Uint32(orig)))
	}
	if flags&unix.NLM_F_ACK_TLVS == 0 || skip > len(orig) {
		return seq, errno, true
	}
	if msg := extAckMsg(orig[skip:]); msg != "" {
		return seq, fmt.Errorf("%w (%s)", errno, msg), true
	}
	return seq, errno, true
}

// extAckMsg finds NLMSGERR_ATTR_MSG, the kernel's words for the error.
func extAckMsg(b []byte) string {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b))
		typ := binary.NativeEndian.Uint16(b[2:])
		if l < 4 || l > len(b) {
			return ""
		}
		if typ == unix.NLMSGERR_ATTR_MSG {
			v := b[4:l]
			for len(v) > 0 && v[len(v)-1] == 0 {
				v = v[:len(v)-1]
			}
			return string(v)
		}
		b = b[min(nlmAlign(l), len(b)):]
	}
	return ""
}

func nlmAlign(n int) int { return (n + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1) }

// appendRouteMsg appends the message of op to b.
//
// Writes are RTM_NEWROUTE with NLM_F_CREATE|NLM_F_REPLACE: idempotent,
// and they take over a route of the same prefix and metric in the table
// (whoever wrote it), which is how a changed route is changed in place. A
// direct route names only its gateway: the kernel finds the link of the
// connected subnet. A route into a tunnel names the link and, when it has
// a next hop, the next hop as an onlink gateway: on a point-to-point IPIP
// link the outer destination is the link's remote and the gateway is never
// resolved (the link has no neighbours), but it is kept in the route so
// that a dump gives back exactly what was written (adoption compares it)
// and `ip route` shows which node the route leads to. Without onlink the
// kernel would refuse it, since no subnet of the tunnel holds it.
//
// Deletes are RTM_DELROUTE naming the table, prefix, protocol and metric:
// the kernel deletes only a route of routerd's protocol (scope
// RT_SCOPE_NOWHERE and no type match any).
func appendRouteMsg(b []byte, seq uint32, op routeOp, protocol uint8, table uint32) []byte {
	start := len(b)
	typ, flags := uint16(unix.RTM_NEWROUTE), uint16(unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	if op.Kind == opDelete {
		typ, flags = unix.RTM_DELROUTE, unix.NLM_F_REQUEST
	}
	b = binary.NativeEndian.AppendUint32(b, 0) // length, set below
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = binary.NativeEndian.AppendUint16(b, flags)
	b = binary.NativeEndian.AppendUint32(b, seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // to the kernel

	r := op.Route
	family := uint8(unix.AF_INET6)
	if r.Prefix.Addr().Is4() {
		family = unix.AF_INET
	}
	rtTable := uint8(unix.RT_TABLE_UNSPEC) // tables ≥ 256 only fit RTA_TABLE
	if table < 256 {
		rtTable = uint8(table)
	}
	scope, rtype, rflags := uint8(unix.RT_SCOPE_UNIVERSE), uint8(unix.RTN_UNICAST), uint32(0)
	switch {
	case op.Kind == opDelete:
		scope, rtype = unix.RT_SCOPE_NOWHERE, unix.RTN_UNSPEC
	case r.Tunnel != "" && r.NextHop.IsValid():
		rflags = unix.RTNH_F_ONLINK
	case r.Tunnel != "":
		scope = unix.RT_SCOPE_LINK
	}
	b = append(b, family, uint8(r.Prefix.Bits()), 0, 0, rtTable, protocol, scope, rtype)
	b = binary.NativeEndian.AppendUint32(b, rflags)

	b = appendAttr(b, unix.RTA_TABLE, binary.NativeEndian.AppendUint32(nil, table))
	b = appendAttr(b, unix.RTA_DST, r.Prefix.Addr().AsSlice())
	switch {
	case op.Kind == opDelete:
		if op.Metric != 0 {
			b = appendAttr(b, unix.RTA_PRIORITY, binary.NativeEndian.AppendUint32(nil, op.Metric))
		}
	default:
		if r.NextHop.IsValid() {
			b = appendAttr(b, unix.RTA_GATEWAY, r.NextHop.AsSlice())
		}
		if r.Tunnel != "" {
			b = appendAttr(b, unix.RTA_OIF, binary.NativeEndian.AppendUint32(nil, uint32(op.OIF)))
		}
	}
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

func appendAttr(b []byte, typ uint16, v []byte) []byte {
	l := unix.SizeofRtAttr + len(v)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, v...)
	for range nlmAlign(l) - l {
		b = append(b, 0)
	}
	return b
}
