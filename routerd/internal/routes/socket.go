package routes

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Socket buffers of the batch socket. One sendmsg must fit the send buffer
// (212992 bytes by default; a route message is 52 bytes for IPv4, 76 for
// IPv6, so 5k routes are 260-380 kB), and the kernel queues every acknowledgement of a batch
// before the first is read, each taking 832 bytes of the granted receive
// buffer (skb overhead; measured: a 2 MiB buffer held 2519 of 8000, the
// rest were dropped with ENOBUFS). The buffers are forced beyond the
// sysctl maxima (SO_SNDBUFFORCE, SO_RCVBUFFORCE, which need CAP_NET_ADMIN
// like the route writes themselves). Without that capability the plain
// options are capped, and the batches shrink to what the granted buffers
// hold.
const (
	sendBuffer = 2 << 20
	recvBuffer = 8 << 20
	// ackBytes is the granted receive buffer counted per message of a
	// batch: 832 measured, error acknowledgements carry the kernel's
	// message too.
	ackBytes = 2048
	// recvTimeout bounds the wait for acknowledgements, which the kernel
	// queues before sendmsg returns: it only ends a wait for ones that
	// were dropped.
	recvTimeout = 10 * time.Second
)

// rtconn is a NETLINK_ROUTE socket for batches.
type rtconn struct {
	fd int
	// maxBytes and maxMsgs are what one batch may hold with the buffers
	// the kernel granted.
	maxBytes, maxMsgs int
}

// dialRoute opens the socket in the network namespace nsfd (0: the
// process's) and sizes its buffers.
func dialRoute(nsfd int) (*rtconn, error) {
	fd, err := socketAt(nsfd)
	if err != nil {
		return nil, err
	}
	c := &rtconn{fd: fd}
	if err := c.setup(); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func (c *rtconn) setup() error {
	tv := unix.NsecToTimeval(recvTimeout.Nanoseconds())
	errs := []error{
		setBuffer(c.fd, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, sendBuffer),
		setBuffer(c.fd, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, recvBuffer),
		unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
		// Error acknowledgements without a copy of the request, and
		// with the kernel's explanation.
		unix.SetsockoptInt(c.fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1),
		unix.SetsockoptInt(c.fd, unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1),
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netlink socket options: %w", err)
	}
	snd, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err != nil {
		return err
	}
	rcv, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return err
	}
	// Both values are what the kernel granted: twice what was asked.
	// netlink_sendmsg refuses a message longer than the send buffer
	// less 32 bytes; half of it leaves room.
	c.maxBytes = max(snd/2, 4096)
	c.maxMsgs = max(rcv/ackBytes, 16)
	return nil
}

// setBuffer sets a socket buffer, beyond the sysctl maximum when allowed.
func setBuffer(fd, force, plain, n int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, n); err == nil {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, n)
}

func (c *rtconn) send(b []byte) error {
	for {
		err := unix.Sendto(c.fd, b, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		if err != unix.EINTR {
			return err
		}
	}
}

func (c *rtconn) recv(b []byte, nowait bool) (int, error) {
	flags := 0
	if nowait {
		flags = unix.MSG_DONTWAIT
	}
	for {
		n, _, err := unix.Recvfrom(c.fd, b, flags)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func (c *rtconn) close() error { return unix.Close(c.fd) }

// socketAt creates the socket in the namespace nsfd. A socket belongs for
// its whole life to the namespace its creating thread was in: a locked
// thread of its own enters nsfd, creates it and goes back. A thread that
// cannot go back stays locked, so the runtime ends it with its goroutine
// rather than reuse it in the wrong namespace.
func socketAt(nsfd int) (int, error) {
	open := func() (int, error) {
		return unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	}
	if nsfd == 0 {
		return open()
	}
	type result struct {
		fd  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{-1, err}
			return
		}
		defer func() { _ = orig.Close() }()
		if err := netns.Set(netns.NsHandle(nsfd)); err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, fmt.Errorf("enter netns: %w", err)}
			return
		}
		fd, err := open()
		if berr := netns.Set(orig); berr != nil {
			if fd >= 0 {
				_ = unix.Close(fd)
			}
			done <- result{-1, fmt.Errorf("back to the original netns: %w", berr)}
			return
		}
		runtime.UnlockOSThread()
		done <- result{fd, err}
	}()
	r := <-done
	return r.fd, r.err
}
