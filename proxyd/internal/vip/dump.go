package vip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// A dump of a routing table is read in parts, one per receive, and the
// table may change between two parts. The kernel does not reliably say so:
// measured on 6.18 with 30k of proxyd's IPv6 routes while another process
// added and deleted other local routes, half of the dumps missed or
// repeated one of proxyd's routes, and none carried NLM_F_DUMP_INTR (the
// IPv6 walker resumes by position after the tree changed; IPv4 resumes by
// key). So List watches the family's route notifications while it dumps:
// a dump is used only if neither the kernel flagged it nor any local-table
// route changed meanwhile.

// retryDump calls dump until it returns a dump it did not flag as
// interrupted, at most attempts times. An interrupted dump may have missed
// or repeated routes, so its result is never used.
func retryDump(attempts int, dump func() (vips []netip.Addr, interrupted bool, err error)) ([]netip.Addr, error) {
	attempts = max(attempts, 1)
	for range attempts {
		vips, interrupted, err := dump()
		if err != nil {
			return nil, err
		}
		if !interrupted {
			return vips, nil
		}
	}
	return nil, fmt.Errorf("%w (%d attempts): %w", ErrInconsistentDump, attempts, nl.ErrDumpInterrupted)
}

// dump reads proxyd's routes of one family. interrupted reports that the
// local table changed while it was read, so routes may be missing or
// repeated.
func (k *Kernel) dump(family uint8) (vips []netip.Addr, interrupted bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sock == nil {
		return nil, false, errClosed
	}
	group := unix.RTNLGRP_IPV4_ROUTE
	if family == unix.AF_INET6 {
		group = unix.RTNLGRP_IPV6_ROUTE
	}
	wfd := k.watch.GetFd()
	if err := unix.SetsockoptInt(wfd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, group); err != nil {
		return nil, false, fmt.Errorf("watch route changes: %w", err)
	}
	defer func() {
		_ = unix.SetsockoptInt(wfd, unix.SOL_NETLINK, unix.NETLINK_DROP_MEMBERSHIP, group)
	}()
	drainFd(wfd) // what came after the last dump's check

	vips, interrupted, err = k.readDump(family)
	if err != nil {
		return nil, false, err
	}
	return vips, interrupted || k.localTableChanged(), nil
}

// localTableChanged reports whether the watch socket saw a route of the
// local table added or deleted, or lost notifications (ENOBUFS).
func (k *Kernel) localTableChanged() bool {
	msgs, overrun := drainFd(k.watch.GetFd())
	if overrun {
		return true
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWROUTE && m.Header.Type != unix.RTM_DELROUTE {
			continue
		}
		if routeTable(m.Data) == unix.RT_TABLE_LOCAL {
			return true
		}
	}
	return false
}

// readDump sends a dump request on the main socket and reads its answer.
func (k *Kernel) readDump(family uint8) (vips []netip.Addr, interrupted bool, err error) {
	k.seq++
	seq := k.seq
	req := appendDumpMsg(nil, family, seq)
	if err := unix.Sendto(k.sock.GetFd(), req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, false, fmt.Errorf("send dump request: %w", err)
	}
	// After a bad message, read on to the end all the same: a dump left
	// unfinished would answer the next one EBUSY.
	var bad error
	for {
		msgs, _, err := k.sock.Receive()
		if err != nil {
			return nil, false, fmt.Errorf("receive dump: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue // the rest of an earlier, abandoned exchange
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				// The payload is the dump's errno (0: complete).
				if len(m.Data) >= 4 {
					if errno := -int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						bad = errors.Join(bad, unix.Errno(errno))
					}
				}
				if bad != nil {
					return nil, false, bad
				}
				return vips, interrupted, nil
			case unix.NLMSG_ERROR:
				// The request itself was refused; nothing follows.
				err := ackError(m)
				if err == nil {
					err = errors.New("dump request acknowledged instead of answered")
				}
				return nil, false, err
			case unix.RTM_NEWROUTE:
				vip, ours, err := parseRoute(m.Data, family)
				if err != nil && bad == nil {
					bad = err
				}
				if ours {
					vips = append(vips, vip)
				}
			}
		}
	}
}

// drainFd reads every message queued on a netlink socket without waiting,
// and reports whether the kernel dropped some (ENOBUFS).
func drainFd(fd int) (msgs []syscall.NetlinkMessage, overrun bool) {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ENOBUFS):
			overrun = true // reported once; the queue may hold more
			continue
		case err != nil || n < unix.NLMSG_HDRLEN:
			return msgs, overrun // EAGAIN: empty
		}
		if m, err := syscall.ParseNetlinkMessage(buf[:nlmAlign(n)]); err == nil {
			msgs = append(msgs, m...)
		}
	}
}
