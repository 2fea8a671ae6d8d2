package vip

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// op is a route write.
type op uint8

const (
	opAdd op = iota + 1
	opDelete
)

func (o op) String() string {
	if o == opAdd {
		return "add"
	}
	return "delete"
}

func (o op) msgType() uint16 {
	if o == opAdd {
		return unix.RTM_NEWROUTE
	}
	return unix.RTM_DELROUTE
}

var errClosed = errors.New("vip: Kernel is closed")

// write applies o to every VIP, batchSize requests per socket write, and
// returns one *VIPError per VIP that failed, plus ErrOverrun when the
// outcome of some requests is unknown, or a socket failure after which the
// remaining VIPs are not attempted. A duplicate VIP is harmless: its second
// request finds the route added (EEXIST, resolved as proxyd's) or gone
// (ESRCH).
func (k *Kernel) write(o op, vips []netip.Addr) []error {
	var errs []error
	todo := make([]netip.Addr, 0, len(vips))
	for _, v := range vips {
		if err := CheckAddr(v); err != nil {
			errs = append(errs, &VIPError{Op: o.String(), VIP: v, Err: err})
			continue
		}
		todo = append(todo, v)
	}
	var exists []netip.Addr
	overrun := false
	for start := 0; start < len(todo); start += k.batchSize {
		chunk := todo[start:min(start+k.batchSize, len(todo))]
		results, err := k.writeChunk(o, chunk)
		for i, rerr := range results {
			switch {
			case rerr == nil:
			case o == opAdd && errors.Is(rerr, unix.EEXIST):
				exists = append(exists, chunk[i])
			case o == opDelete && errors.Is(rerr, unix.ESRCH):
				// No route of proxyd's protocol for the VIP: nothing to do.
			default:
				errs = append(errs, &VIPError{Op: o.String(), VIP: chunk[i], Err: classify(rerr)})
			}
		}
		if errors.Is(err, ErrOverrun) {
			overrun = true // the socket is clean again: go on
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("vip: %s %d routes, stopped after %d: %w", o, len(todo), start, err))
			break
		}
	}
	if overrun {
		errs = append(errs, fmt.Errorf("vip: %s %d routes: %w", o, len(todo), ErrOverrun))
	}
	if len(exists) > 0 {
		errs = append(errs, k.resolveExists(exists)...)
	}
	return errs
}

// classify adds the sentinel callers test for to the kernel's errno.
func classify(err error) error {
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ERANGE) {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}

// resolveExists sorts VIPs whose add the kernel answered EEXIST: a route
// with the same key exists. When it is proxyd's (List has the VIP) the add
// has nothing to do; otherwise another owner's route holds the key. One
// dump answers for all of them; it is only needed when proxyd's view of the
// kernel was out of date.
func (k *Kernel) resolveExists(vips []netip.Addr) []error {
	ours, err := k.List()
	var errs []error
	for _, v := range vips {
		switch {
		case err != nil:
			errs = append(errs, &VIPError{Op: opAdd.String(), VIP: v,
				Err: fmt.Errorf("%w; finding out whose route it is: %w", unix.EEXIST, err)})
		case !contains(ours, v):
			errs = append(errs, &VIPError{Op: opAdd.String(), VIP: v, Err: fmt.Errorf("%w: %w", ErrExists, unix.EEXIST)})
		}
	}
	return errs
}

func contains(sorted []netip.Addr, v netip.Addr) bool {
	_, found := slices.BinarySearchFunc(sorted, v, netip.Addr.Compare)
	return found
}

// writeChunk sends one request per VIP in a single write and returns the
// kernel's answer to each (nil: done). Only the last request asks for an
// acknowledgement: the kernel answers failures unasked, and handles the
// whole write, in order, before sendto returns, so once the last answer
// is read every earlier one has been.
func (k *Kernel) writeChunk(o op, vips []netip.Addr) ([]error, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sock == nil {
		return nil, errClosed
	}
	buf := make([]byte, 0, len(vips)*64)
	first := k.seq + 1
	for i, v := range vips {
		k.seq++
		buf = appendRouteMsg(buf, o.msgType(), v, k.seq, i == len(vips)-1)
	}
	last := k.seq
	if err := unix.Sendto(k.sock.GetFd(), buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	results := make([]error, len(vips))
	record := func(msgs []syscall.NetlinkMessage) (done bool) {
		for _, m := range msgs {
			i := m.Header.Seq - first // wraps: anything before first is huge
			if m.Header.Type != unix.NLMSG_ERROR || i > last-first {
				continue // an answer to an earlier, abandoned exchange
			}
			results[i] = ackError(m)
			done = done || m.Header.Seq == last
		}
		return done
	}
	for {
		msgs, _, err := k.sock.Receive()
		if errors.Is(err, unix.ENOBUFS) {
			// The socket's receive buffer overflowed and the kernel
			// dropped answers. It has finished with the write, so the
			// answers it kept are all queued: read them, and report
			// the rest unknown.
			msgs, _ := drainFd(k.sock.GetFd())
			record(msgs)
			return results, ErrOverrun
		}
		if err != nil {
			return results, fmt.Errorf("receive: %w", err)
		}
		if record(msgs) {
			return results, nil
		}
	}
}
