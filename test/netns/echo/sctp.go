package echo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SCTP has no support in Go's standard library. These are one-to-one style
// sockets (SOCK_STREAM, IPPROTO_SCTP): one association per socket, read and
// written like a stream, which is all an echo needs. The descriptors are
// non-blocking and wrapped in *os.File, so Go's poller does the waiting
// (deadlines and Close work as on any net.Conn).

// ErrSCTPUnsupported is returned when the kernel has no SCTP (the socket
// call fails with EPROTONOSUPPORT, as on a kernel built without
// CONFIG_IP_SCTP). Tests skip their SCTP cases on it, never pass them.
var ErrSCTPUnsupported = errors.New("the kernel has no SCTP")

func sctpSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ESOCKTNOSUPPORT) {
		return -1, fmt.Errorf("%w (socket: %v)", ErrSCTPUnsupported, err)
	}
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return fd, nil
}

// ProbeSCTP reports whether SCTP sockets can be made in the caller's network
// namespace: nil, or an error wrapping ErrSCTPUnsupported.
func ProbeSCTP() error {
	fd, err := sctpSocket()
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// SCTPListener accepts SCTP associations.
type SCTPListener struct {
	f    *os.File
	addr netip.AddrPort
}

// ListenSCTP listens on 0.0.0.0:port. The socket lives in the network
// namespace of the calling thread.
func ListenSCTP(port uint16) (*SCTPListener, error) {
	fd, err := sctpSocket()
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port)}); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("listen", err)
	}
	local, err := sockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return &SCTPListener{f: os.NewFile(uintptr(fd), "sctp-listener"), addr: local}, nil
}

// Addr is the local address the listener is bound to.
func (l *SCTPListener) Addr() netip.AddrPort { return l.addr }

// Accept waits for the next association.
func (l *SCTPListener) Accept() (*SCTPConn, error) {
	raw, err := l.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		nfd  int
		sa   unix.Sockaddr
		aerr error
	)
	err = raw.Read(func(fd uintptr) bool {
		nfd, sa, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		return !errors.Is(aerr, unix.EAGAIN)
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, os.NewSyscallError("accept4", aerr)
	}
	local, err := sockname(nfd)
	if err != nil {
		_ = unix.Close(nfd)
		return nil, err
	}
	return &SCTPConn{f: os.NewFile(uintptr(nfd), "sctp"), local: local, remote: addrPort(sa)}, nil
}

// Close stops the listener; a blocked Accept returns an error.
func (l *SCTPListener) Close() error { return l.f.Close() }

// SCTPConn is one SCTP association.
type SCTPConn struct {
	f             *os.File
	local, remote netip.AddrPort
}

// DialSCTP connects to addr. The socket lives in the network namespace of
// the calling thread; ctx bounds the association set-up.
func DialSCTP(ctx context.Context, addr netip.AddrPort) (*SCTPConn, error) {
	if !addr.Addr().Is4() {
		return nil, fmt.Errorf("echo: DialSCTP %s: IPv4 only", addr)
	}
	fd, err := sctpSocket()
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "sctp")
	cerr := unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())})
	if cerr != nil && !errors.Is(cerr, unix.EINPROGRESS) {
		_ = f.Close()
		return nil, os.NewSyscallError("connect", cerr)
	}
	if errors.Is(cerr, unix.EINPROGRESS) {
		if err := waitConnected(ctx, f); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	local, err := sockname(fd)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &SCTPConn{f: f, local: local, remote: addr}, nil
}

// waitConnected waits for a non-blocking connect to finish, the way the
// net package does: wait until writable, then read SO_ERROR.
func waitConnected(ctx context.Context, f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	stop := bindDeadline(ctx, f.SetWriteDeadline)
	defer stop()
	var cerr error
	err = raw.Write(func(fd uintptr) bool {
		soerr, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			cerr = os.NewSyscallError("getsockopt", err)
			return true
		}
		if soerr != 0 {
			cerr = os.NewSyscallError("connect", syscall.Errno(soerr))
			return true
		}
		if _, err := unix.Getpeername(int(fd)); errors.Is(err, unix.ENOTCONN) {
			return false // still in progress: wait for writability
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("echo: sctp connect: %w", ctxErr(ctx, err))
	}
	return cerr
}

func (c *SCTPConn) Read(b []byte) (int, error)         { return c.f.Read(b) }
func (c *SCTPConn) Write(b []byte) (int, error)        { return c.f.Write(b) }
func (c *SCTPConn) Close() error                       { return c.f.Close() }
func (c *SCTPConn) SetDeadline(t time.Time) error      { return c.f.SetDeadline(t) }
func (c *SCTPConn) SetReadDeadline(t time.Time) error  { return c.f.SetReadDeadline(t) }
func (c *SCTPConn) SetWriteDeadline(t time.Time) error { return c.f.SetWriteDeadline(t) }

// LocalAddr is the association's local (primary) address.
func (c *SCTPConn) LocalAddr() netip.AddrPort { return c.local }

// RemoteAddr is the peer's (primary) address.
func (c *SCTPConn) RemoteAddr() netip.AddrPort { return c.remote }

func sockname(fd int) (netip.AddrPort, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getsockname", err)
	}
	return addrPort(sa), nil
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	if sa4, ok := sa.(*unix.SockaddrInet4); ok {
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(sa4.Port))
	}
	return netip.AddrPort{}
}
