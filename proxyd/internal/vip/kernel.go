package vip

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Kernel is Interface over the kernel's routing tables, through rtnetlink
// sockets of its own (github.com/vishvananda/netlink's nl package). It is
// safe for concurrent use: requests take turns on the socket.
//
// It does not use netlink.Handle's route calls, for what they cost,
// measured on this project's machine (2 cores, kernel 6.18; the package's
// benchmarks):
//
//   - Handle.RouteAdd sends one request and waits for its answer, ≈10 µs a
//     route (Add and Delete do the same). AddAll and DeleteAll write
//     batchSize requests in one sendto, asking for an answer to the last
//     one only (the kernel answers every failure anyway): ≈3.4 µs a route
//     added, ≈2.5 µs deleted, the same at 1k as at 30k. Acknowledging every
//     request costs ≈2× as much again; larger batches gain nothing.
//   - Handle.RouteListFiltered dumps every route of every table and filters
//     in Go: 30k VIPs 47 ms, 100 ms beside 20k main-table routes. This
//     socket turns on NETLINK_GET_STRICT_CHK, so the kernel sends only
//     proxyd's routes: 17 ms either way. (Turning it on for a Handle would
//     change the Handle for its other users.)
type Kernel struct {
	mu   sync.Mutex // one request, batch chunk or dump at a time
	sock *nl.NetlinkSocket
	seq  uint32 // last sequence number used
	// watch joins the route notification group of a family while it is
	// dumped, to see whether the local table changed meanwhile (see
	// dump.go: the kernel does not always say).
	watch *nl.NetlinkSocket

	// batchSize is the number of requests per write. The answers to a
	// whole batch of failures (128 × ~1 kB) fit the default receive
	// buffer (212992 bytes) even where rmem_max keeps it from growing.
	batchSize int
	// dumpAttempts is how many times List dumps a family before giving up
	// on dumps the kernel flags as interrupted.
	dumpAttempts int
}

var _ Interface = (*Kernel)(nil)

const (
	defaultBatchSize    = 128
	defaultDumpAttempts = 5
	// receiveBuffer is asked for with SO_RCVBUF (the kernel caps it at
	// net.core.rmem_max): room for the answers to several failed batches.
	receiveBuffer = 1 << 20
	// socketTimeout bounds each receive. The kernel answers a route
	// request before the write returns, so only a kernel bug could make
	// a receive wait; proxyd must not hang on one.
	socketTimeout = 30 * time.Second
)

// NewKernel opens a rtnetlink socket in the network namespace ns, or in
// the calling thread's when ns is netns.None() (proxyd, which runs in the
// node's namespace). The Kernel works on that namespace whatever thread
// uses it later. Writes need CAP_NET_ADMIN in it; the kernel refuses them
// with EPERM otherwise.
func NewKernel(ns netns.NsHandle) (*Kernel, error) {
	sock, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("vip: open rtnetlink socket: %w", err)
	}
	k := &Kernel{sock: sock, batchSize: defaultBatchSize, dumpAttempts: defaultDumpAttempts}
	tv := unix.NsecToTimeval(socketTimeout.Nanoseconds())
	_ = sock.SetReceiveTimeout(&tv) // only stores the value
	_ = sock.SetSendTimeout(&tv)
	fd := sock.GetFd()
	// Kernel-side dump filtering (Linux ≥ 4.20). Without it dumps are
	// larger, and parseRoute still filters: not an error.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1)
	// The kernel's reason with an errno (≥ 4.12), and failure answers
	// without a copy of the request (≥ 4.3): only what helps.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer); err != nil {
		sock.Close()
		return nil, fmt.Errorf("vip: rtnetlink receive buffer: %w", err)
	}
	k.watch, err = nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_ROUTE)
	if err != nil {
		sock.Close()
		return nil, fmt.Errorf("vip: open rtnetlink socket: %w", err)
	}
	return k, nil
}

// Close releases the socket. The routes stay: they are the datapath.
func (k *Kernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sock != nil {
		k.sock.Close()
		k.watch.Close()
		k.sock, k.watch = nil, nil
	}
	return nil
}

// List is part of Interface: one dump per family, each repeated (up to
// dumpAttempts times) while the local table changed during it.
func (k *Kernel) List() ([]netip.Addr, error) {
	var all []netip.Addr
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		vips, err := retryDump(k.dumpAttempts, func() ([]netip.Addr, bool, error) {
			return k.dump(family)
		})
		if err != nil {
			return nil, fmt.Errorf("vip: list %s routes: %w", familyName(family), err)
		}
		all = append(all, vips...)
	}
	slices.SortFunc(all, netip.Addr.Compare)
	// Two routes of proxyd's protocol for one VIP (say, different metrics
	// left by another version) are one VIP.
	return slices.Compact(all), nil
}

// Add is part of Interface.
func (k *Kernel) Add(vip netip.Addr) error {
	return join(k.write(opAdd, []netip.Addr{vip}))
}

// Delete is part of Interface.
func (k *Kernel) Delete(vip netip.Addr) error {
	return join(k.write(opDelete, []netip.Addr{vip}))
}

// AddAll is part of Interface.
func (k *Kernel) AddAll(vips []netip.Addr) error {
	return join(k.write(opAdd, vips))
}

// DeleteAll is part of Interface.
func (k *Kernel) DeleteAll(vips []netip.Addr) error {
	return join(k.write(opDelete, vips))
}

// join is errors.Join, except that a single error is returned as it is
// (a *VIPError for Add and Delete, as callers expect).
func join(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

func familyName(f uint8) string {
	if f == unix.AF_INET {
		return "IPv4"
	}
	return "IPv6"
}
