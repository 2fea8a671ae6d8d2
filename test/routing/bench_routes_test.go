//go:build kernel

package routing

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/netns"
	"golang.org/x/sys/unix"
)

// kernelRoutes follows the routes of one protocol to 198.19.0.0/16 in the
// main table of a namespace through its route notifications. It reads
// them from a netlink socket of its own and decodes only the header and
// the destination: the observer must cost little beside what it observes
// (netlink.RouteSubscribe decodes every attribute of every route and
// hands each to a channel, which on two cores took CPU from the
// receivers).
type kernelRoutes struct {
	proto uint8
	f     *os.File
	done  chan struct{}

	mu      sync.Mutex
	present map[netip.Prefix]bool
	events  []routeNote
	err     error
}

// routeNote is one notification that changed the set of routes: when it
// was read, and how many routes there were after it.
type routeNote struct {
	at    time.Time
	count int
}

func watchKernelRoutes(tb testing.TB, ns *netns.NetNS, proto uint8) *kernelRoutes {
	tb.Helper()
	w := &kernelRoutes{proto: proto, done: make(chan struct{}), present: map[netip.Prefix]bool{}}
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		// Room for every notification of a phase: one lost would
		// be a route never seen (ENOBUFS says so).
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_ROUTE})
		}
		if err != nil {
			_ = unix.Close(fd)
		}
		return err
	})
	if err != nil {
		tb.Fatalf("%s: route notifications: %v", ns.Name, err)
	}
	w.f = os.NewFile(uintptr(fd), "rtnetlink-"+ns.Name) // non-blocking: served by the poller
	tb.Cleanup(w.close)
	go w.read()
	return w
}

func (w *kernelRoutes) read() {
	defer close(w.done)
	rc, err := w.f.SyscallConn()
	if err != nil {
		w.fail(err)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			w.fail(fmt.Errorf("route notifications lost: %w", rerr))
			continue
		}
		at := time.Now()
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				break
			}
			w.message(binary.NativeEndian.Uint16(b[4:]), b[unix.SizeofNlMsghdr:l], at)
			b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
		}
	}
}

// message looks at one RTM_NEWROUTE or RTM_DELROUTE: struct rtmsg, then
// its attributes.
func (w *kernelRoutes) message(typ uint16, m []byte, at time.Time) {
	if (typ != unix.RTM_NEWROUTE && typ != unix.RTM_DELROUTE) || len(m) < unix.SizeofRtMsg {
		return
	}
	bits, table, proto := int(m[1]), uint32(m[4]), m[5]
	if m[0] != unix.AF_INET || proto != w.proto {
		return
	}
	var dst netip.Addr
	for a := m[unix.SizeofRtMsg:]; len(a) >= unix.SizeofRtAttr; {
		l := int(binary.NativeEndian.Uint16(a))
		if l < unix.SizeofRtAttr || l > len(a) {
			break
		}
		v := a[unix.SizeofRtAttr:l]
		switch binary.NativeEndian.Uint16(a[2:]) {
		case unix.RTA_DST:
			if len(v) == 4 {
				dst = netip.AddrFrom4([4]byte(v))
			}
		case unix.RTA_TABLE:
			if len(v) == 4 {
				table = binary.NativeEndian.Uint32(v)
			}
		}
		a = a[min((l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1), len(a)):]
	}
	if table != unix.RT_TABLE_MAIN || !dst.IsValid() || !benchCIDR.Contains(dst) {
		return
	}
	p := netip.PrefixFrom(dst, bits)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case typ == unix.RTM_NEWROUTE && !w.present[p]:
		w.present[p] = true
	case typ == unix.RTM_DELROUTE && w.present[p]:
		delete(w.present, p)
	default:
		return
	}
	w.events = append(w.events, routeNote{at: at, count: len(w.present)})
}

func (w *kernelRoutes) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *kernelRoutes) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.present)
}

// progress is the number of routes and of changes so far.
func (w *kernelRoutes) progress() (routes, changes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.present), len(w.events)
}

func (w *kernelRoutes) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// span is the time of the first change after mark and of the change that
// made the count want.
func (w *kernelRoutes) span(mark, want int) (first, last time.Time, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if mark >= len(w.events) {
		return first, last, false
	}
	for _, e := range w.events[mark:] {
		if e.count == want {
			return w.events[mark].at, e.at, true
		}
	}
	return first, last, false
}

func (w *kernelRoutes) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *kernelRoutes) close() {
	_ = w.f.Close()
	<-w.done
}
