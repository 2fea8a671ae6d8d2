//go:build kernel

package nft

// Helpers of the kernel tests, beside netnstest's network namespaces that
// the test creates (the host's namespace is never touched) and veth pairs:
// routes, namespace-local sysctls, Debian's nft (the tests check that it
// lists the table; the package itself never runs it), and a tiny echo service
// (TCP and UDP) run in goroutines inside the namespaces.

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// nftConn is a google/nftables connection to ns, for what tests do behind
// the table's back.
func nftConn(t testing.TB, ns netns.NsHandle) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nftCLI runs Debian's nft in ns and returns its output and error; the
// test is skipped when nft is not installed.
func nftCLI(t *testing.T, ns netns.NsHandle, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft (Debian package nftables) is not installed")
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		t.Skip("nsenter is not installed")
	}
	cmd := exec.Command("nsenter", append([]string{fmt.Sprintf("--net=/proc/%d/fd/%d", os.Getpid(), int(ns)), "nft"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// nftCLIOptional is nftCLI without the skip: an error when nft is not
// there.
func nftCLIOptional(t *testing.T, ns netns.NsHandle, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		return "", err
	}
	return nftCLI(t, ns, args...)
}

// sysctl writes a namespace-local sysctl (net.*) of ns.
func sysctl(t *testing.T, ns netns.NsHandle, name, value string) {
	t.Helper()
	path := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if err := netnstest.InNetns(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		t.Fatalf("sysctl %s=%s: %v", name, value, err)
	}
}

// route adds a route to dst (CIDR) in ns: through gateway via when valid,
// else straight out of dev (scope link).
func route(t *testing.T, ns netns.NsHandle, dst, dev string, via netip.Addr) {
	t.Helper()
	h := netnstest.Handle(t, ns)
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	d, err := netlink.ParseIPNet(dst)
	if err != nil {
		t.Fatal(err)
	}
	r := &netlink.Route{Dst: d, LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK}
	if via.IsValid() {
		r.Gw, r.Scope = via.AsSlice(), netlink.SCOPE_UNIVERSE
	}
	if err := h.RouteAdd(r); err != nil {
		t.Fatalf("route %s dev %s via %v: %v", dst, dev, via, err)
	}
}

// echo answers every TCP line and UDP datagram with "<name> <client
// address>\n": a client sees who answered and whom the server saw.
type echo struct {
	name    string
	closers []func() error
}

// serveEcho starts echo servers in ns on the TCP and UDP ports given,
// stopped with the test.
func serveEcho(t *testing.T, ns netns.NsHandle, name string, tcpPorts, udpPorts []uint16) {
	t.Helper()
	e := &echo{name: name}
	err := netnstest.InNetns(ns, func() error {
		for _, p := range tcpPorts {
			l, err := net.Listen("tcp4", fmt.Sprintf(":%d", p))
			if err != nil {
				return err
			}
			e.closers = append(e.closers, l.Close)
			go e.acceptTCP(l)
		}
		for _, p := range udpPorts {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: int(p)})
			if err != nil {
				return err
			}
			e.closers = append(e.closers, c.Close)
			go e.serveUDP(c)
		}
		return nil
	})
	t.Cleanup(func() {
		for _, c := range e.closers {
			_ = c()
		}
	})
	if err != nil {
		t.Fatalf("echo %s: %v", name, err)
	}
}

func (e *echo) acceptTCP(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer func() { _ = c.Close() }()
			ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
			r := bufio.NewReader(c)
			for {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				if _, err := fmt.Fprintf(c, "%s %s\n", e.name, ap.Addr().Unmap()); err != nil {
					return
				}
			}
		}()
	}
}

func (e *echo) serveUDP(c *net.UDPConn) {
	buf := make([]byte, 512)
	for {
		_, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, _ = c.WriteToUDPAddrPort([]byte(fmt.Sprintf("%s %s\n", e.name, from.Addr().Unmap())), from)
	}
}

// session is an open TCP connection to an echo server.
type session struct {
	c net.Conn
	r *bufio.Reader
}

// dialTCP connects from ns (from src) to dst within timeout.
func dialTCP(ns netns.NsHandle, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (*session, error) {
	var s *session
	err := netnstest.InNetns(ns, func() error {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		c, err := d.Dial("tcp4", dst.String())
		if err != nil {
			return err
		}
		s = &session{c: c, r: bufio.NewReader(c)}
		return nil
	})
	return s, err
}

// ask sends a line and returns the answer.
func (s *session) ask(timeout time.Duration) (string, error) {
	_ = s.c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(s.c, "hello"); err != nil {
		return "", err
	}
	line, err := s.r.ReadString('\n')
	return strings.TrimSpace(line), err
}

func (s *session) close() { _ = s.c.Close() }

// askTCP connects, asks once and closes.
func askTCP(ns netns.NsHandle, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	s, err := dialTCP(ns, src, dst, timeout)
	if err != nil {
		return "", err
	}
	defer s.close()
	return s.ask(timeout)
}

// askUDP sends a datagram from ns (from src) to dst every 100 ms until an
// answer comes or timeout passes.
func askUDP(ns netns.NsHandle, src netip.Addr, dst netip.AddrPort, timeout time.Duration) (string, error) {
	var c *net.UDPConn
	if err := netnstest.InNetns(ns, func() (err error) {
		c, err = net.DialUDP("udp4", &net.UDPAddr{IP: src.AsSlice()}, net.UDPAddrFromAddrPort(dst))
		return err
	}); err != nil {
		return "", err
	}
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 512)
	for {
		if _, err := c.Write([]byte("hello\n")); err != nil {
			return "", err
		}
		next := time.Now().Add(100 * time.Millisecond)
		if deadline.Before(next) {
			next = deadline
		}
		_ = c.SetReadDeadline(next)
		n, err := c.Read(buf)
		if err == nil {
			return strings.TrimSpace(string(buf[:n])), nil
		}
		if !time.Now().Before(deadline) {
			return "", fmt.Errorf("no answer within %v: %w", timeout, err)
		}
	}
}
