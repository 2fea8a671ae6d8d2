//go:build kernel

package nft

// SCTP through firewalld's table: a rule's protocol and port hold for
// SCTP as for TCP and UDP. The host kernel has no SCTP (the test skips
// there); Debian's kernel in the VM has it:
//
//	make vmexec vm-assets
//	go test -tags kernel,vm -exec $PWD/_output/bin/vmexec -run SCTP ./firewalld/internal/nft/
//
// Go's standard library has no SCTP, and this module does not import the
// test module's echo: below is a minimal SCTP echo on one-to-one style
// sockets (SOCK_STREAM, IPPROTO_SCTP), read and written like a stream.
// The descriptors are non-blocking and wrapped in *os.File, so Go's poller
// does the waiting (deadlines and Close work).

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const protoSCTP = model.ProtoSCTP

func sctp(port uint16) model.PortRange {
	return model.PortRange{ProtoFrom: protoSCTP, ProtoTo: protoSCTP, PortFrom: port, PortTo: port}
}

func TestKernelSCTP(t *testing.T) {
	requireSCTP(t)
	tp := newTopology(t)
	const allowed, other = 80, 81
	serveSCTP(t, tp.podA, "podA", allowed, other)
	serveEcho(t, tp.podA, "podA", []uint16{allowed}, nil)

	// podA isolated for ingress; the ipBlock 198.18.0.0/24 (the client,
	// not the remote pod) may reach SCTP 80, nothing else.
	tb := New(Config{NetNS: int(tp.node)})
	d := baseTraffic()
	allow(d, inA, peerExt, sctp(allowed))
	mustApply(t, tb, d)

	sctpTo := func(from netns.NsHandle, src netip.Addr, port uint16) attempt {
		dst := netip.AddrPortFrom(podA, port)
		return attempt{what: fmt.Sprintf("sctp %v → %v", src, dst), src: src, dst: podA, proto: protoSCTP, port: port,
			try: func(timeout time.Duration) (string, error) { return askSCTP(from, src, dst, timeout) }}
	}
	tcpTo := func(from netns.NsHandle, src netip.Addr, port uint16) attempt {
		dst := netip.AddrPortFrom(podA, port)
		return attempt{what: fmt.Sprintf("tcp %v → %v", src, dst), src: src, dst: podA, proto: protoTCP, port: port,
			try: func(timeout time.Duration) (string, error) { return askTCP(from, src, dst, timeout) }}
	}
	expectAttempt(t, tb, d, sctpTo(tp.ext, client, allowed), model.Allowed)
	expectAttempt(t, tb, d, sctpTo(tp.ext, client, other), model.DeniedIngress)
	expectAttempt(t, tb, d, tcpTo(tp.ext, client, allowed), model.DeniedIngress)
	// The peer holds too: the remote pod is not in the block.
	expectAttempt(t, tb, d, sctpTo(tp.ext, remotePod, allowed), model.DeniedIngress)
	// The server on 81 works: opened, it answers.
	allow(d, inA, peerExt, sctp(other))
	mustApply(t, tb, d)
	expectAttempt(t, tb, d, sctpTo(tp.ext, client, other), model.Allowed)
}

// errNoSCTP: the kernel has no SCTP (socket fails with EPROTONOSUPPORT,
// as on a kernel built without CONFIG_IP_SCTP).
var errNoSCTP = errors.New("the kernel has no SCTP")

// requireSCTP skips the test unless an SCTP socket can be made (in a
// throwaway namespace).
func requireSCTP(t *testing.T) {
	t.Helper()
	err := netnstest.InNetns(netnstest.New(t), func() error {
		f, err := sctpSocket()
		if err != nil {
			return err
		}
		return f.Close()
	})
	switch {
	case errors.Is(err, errNoSCTP):
		t.Skipf("%v; SCTP runs in the VM (Debian's kernel): make vmexec vm-assets && go test -tags kernel,vm -exec $PWD/_output/bin/vmexec ./firewalld/internal/nft/", err)
	case err != nil:
		t.Fatal(err)
	}
}

// sctpSocket makes a non-blocking one-to-one SCTP socket in the calling
// thread's namespace.
func sctpSocket() (*os.File, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_SCTP)
	if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ESOCKTNOSUPPORT) {
		return nil, fmt.Errorf("%w (socket: %v)", errNoSCTP, err)
	}
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	return os.NewFile(uintptr(fd), "sctp"), nil
}

// control runs fn on f's descriptor.
func control(f *os.File, fn func(fd int) error) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := raw.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// serveSCTP starts SCTP echo servers in ns on the ports given (answers
// as serveEcho's), stopped with the test.
func serveSCTP(t *testing.T, ns netns.NsHandle, name string, ports ...uint16) {
	t.Helper()
	for _, port := range ports {
		var l *os.File
		err := netnstest.InNetns(ns, func() (err error) {
			if l, err = sctpSocket(); err != nil {
				return err
			}
			return control(l, func(fd int) error {
				if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port)}); err != nil {
					return os.NewSyscallError("bind", err)
				}
				return os.NewSyscallError("listen", unix.Listen(fd, 64))
			})
		})
		if l != nil {
			t.Cleanup(func() { _ = l.Close() })
		}
		if err != nil {
			t.Fatalf("sctp echo %s on %d: %v", name, port, err)
		}
		go acceptSCTP(l, name)
	}
}

func acceptSCTP(l *os.File, name string) {
	raw, err := l.SyscallConn()
	if err != nil {
		return
	}
	for {
		var (
			nfd  int
			sa   unix.Sockaddr
			aerr error
		)
		if err := raw.Read(func(fd uintptr) bool {
			nfd, sa, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			return !errors.Is(aerr, unix.EAGAIN)
		}); err != nil {
			return // closed
		}
		if aerr != nil {
			continue // an association aborted before it was accepted
		}
		var from netip.Addr
		if sa4, ok := sa.(*unix.SockaddrInet4); ok {
			from = netip.AddrFrom4(sa4.Addr)
		}
		go answerSCTP(os.NewFile(uintptr(nfd), "sctp"), name, from)
	}
}

// answerSCTP answers every line with "<name> <client address>".
func answerSCTP(c *os.File, name string, from netip.Addr) {
	defer func() { _ = c.Close() }()
	r := bufio.NewReader(c)
	for {
		if _, err := r.ReadString('\n'); err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "%s %s\n", name, from); err != nil {
			return
		}
	}
}

// askSCTP associates from ns (from src) with dst within timeout, sends a
// line and returns the answer.
func askSCTP(ns netns.NsHandle, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	var f *os.File
	err := netnstest.InNetns(ns, func() (err error) {
		if f, err = sctpSocket(); err != nil {
			return err
		}
		return control(f, func(fd int) error {
			if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: src.As4()}); err != nil {
				return os.NewSyscallError("bind", err)
			}
			err := unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.Addr().As4(), Port: int(dst.Port())})
			if err != nil && !errors.Is(err, unix.EINPROGRESS) {
				return os.NewSyscallError("connect", err)
			}
			return nil
		})
	})
	if f != nil {
		defer func() { _ = f.Close() }()
	}
	if err != nil {
		return "", err
	}
	_ = f.SetDeadline(time.Now().Add(timeout))
	if err := waitAssociated(f); err != nil {
		return "", err
	}
	if _, err := fmt.Fprintln(f, "hello"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	return strings.TrimSpace(line), err
}

// waitAssociated waits (until f's deadline) for a non-blocking connect to
// finish, as the net package does: writable, then SO_ERROR. An SCTP
// socket is writable while its association is still being set up, so
// getpeername tells whether it is.
func waitAssociated(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var cerr error
	err = raw.Write(func(fd uintptr) bool {
		soerr, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			cerr = os.NewSyscallError("getsockopt", err)
		case soerr != 0:
			cerr = os.NewSyscallError("connect", syscall.Errno(soerr))
		default:
			if _, err := unix.Getpeername(int(fd)); errors.Is(err, unix.ENOTCONN) {
				return false // still in progress
			}
		}
		return true
	})
	if err != nil {
		return fmt.Errorf("sctp association: %w", err)
	}
	return cerr
}
