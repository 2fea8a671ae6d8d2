package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/nodenet/nodenet/test/netns/echo"
)

// Echo servers and clients run inside any namespace of the topology (pods
// mostly; nodes for hostNetwork cases; the world as an outside client). The
// sockets are made inside the namespace with Do, then served and used from
// ordinary goroutines.

// ServeTCP starts a TCP echo server on 0.0.0.0:port in the namespace,
// answering as n.Name. It returns once the socket listens.
func (n *NetNS) ServeTCP(port uint16) error {
	var ln net.Listener
	if err := n.Do(func() error {
		var lc net.ListenConfig
		// Plain TCP: Go may otherwise make an MPTCP listener, which some
		// kernels (and their conntrack/policy paths) treat differently.
		lc.SetMultipathTCP(false)
		var err error
		ln, err = lc.Listen(context.Background(), "tcp4", ":"+strconv.Itoa(int(port)))
		return err
	}); err != nil {
		return fmt.Errorf("%s: serve tcp: %w", n.Name, err)
	}
	n.echoServer().ServeTCP(ln)
	return nil
}

// ServeUDP starts a UDP echo server on 0.0.0.0:port in the namespace.
func (n *NetNS) ServeUDP(port uint16) error {
	var pc *net.UDPConn
	if err := n.Do(func() error {
		var err error
		pc, err = net.ListenUDP("udp4", &net.UDPAddr{Port: int(port)})
		return err
	}); err != nil {
		return fmt.Errorf("%s: serve udp: %w", n.Name, err)
	}
	if err := n.echoServer().ServeUDP(pc); err != nil {
		_ = pc.Close()
		return fmt.Errorf("%s: serve udp: %w", n.Name, err)
	}
	return nil
}

// ServeSCTP starts an SCTP echo server on 0.0.0.0:port in the namespace.
// Without kernel SCTP the error wraps echo.ErrSCTPUnsupported: skip then.
func (n *NetNS) ServeSCTP(port uint16) error {
	var ln *echo.SCTPListener
	if err := n.Do(func() error {
		var err error
		ln, err = echo.ListenSCTP(port)
		return err
	}); err != nil {
		return fmt.Errorf("%s: serve sctp: %w", n.Name, err)
	}
	n.echoServer().ServeSCTP(ln)
	return nil
}

// echoServer is the namespace's echo server, made on first use.
func (n *NetNS) echoServer() *echo.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.server == nil {
		n.server = echo.NewServer(n.Name)
	}
	return n.server
}

// OpenTCP connects to an echo server from inside the namespace and returns
// a session that can ask many times (close it when done).
func (n *NetNS) OpenTCP(ctx context.Context, addr netip.AddrPort) (*echo.Session, error) {
	var c net.Conn
	if err := n.Do(func() error {
		var d net.Dialer
		d.SetMultipathTCP(false)
		var err error
		// "tcp4" and an address literal: no name lookup and no parallel
		// IPv4/IPv6 attempts, so the socket is made by this goroutine, on
		// this thread, in this namespace (Happy Eyeballs would dial from
		// other goroutines, which are not in the namespace).
		c, err = d.DialContext(ctx, "tcp4", addr.String())
		return err
	}); err != nil {
		return nil, fmt.Errorf("%s: tcp to %s: %w", n.Name, addr, err)
	}
	return echo.NewSession(c.(*net.TCPConn), "tcp"), nil
}

// OpenSCTP is OpenTCP over SCTP. Without kernel SCTP the error wraps
// echo.ErrSCTPUnsupported.
func (n *NetNS) OpenSCTP(ctx context.Context, addr netip.AddrPort) (*echo.Session, error) {
	var c *echo.SCTPConn
	if err := n.Do(func() error {
		var err error
		c, err = echo.DialSCTP(ctx, addr)
		return err
	}); err != nil {
		return nil, fmt.Errorf("%s: sctp to %s: %w", n.Name, addr, err)
	}
	return echo.NewSession(c, "sctp"), nil
}

// DialTCP connects from inside the namespace, asks once and closes.
func (n *NetNS) DialTCP(ctx context.Context, addr netip.AddrPort) (echo.Answer, error) {
	s, err := n.OpenTCP(ctx, addr)
	if err != nil {
		return echo.Answer{}, err
	}
	return askOnce(ctx, s, n.Name, addr)
}

// DialSCTP is DialTCP over SCTP.
func (n *NetNS) DialSCTP(ctx context.Context, addr netip.AddrPort) (echo.Answer, error) {
	s, err := n.OpenSCTP(ctx, addr)
	if err != nil {
		return echo.Answer{}, err
	}
	return askOnce(ctx, s, n.Name, addr)
}

func askOnce(ctx context.Context, s *echo.Session, from string, addr netip.AddrPort) (echo.Answer, error) {
	defer func() { _ = s.Close() }()
	a, err := s.Ask(ctx)
	if err != nil {
		return a, fmt.Errorf("%s: to %s: %w", from, addr, err)
	}
	return a, nil
}

// DialUDP sends a UDP echo request from inside the namespace (retrying
// until ctx ends) and returns the answer.
func (n *NetNS) DialUDP(ctx context.Context, addr netip.AddrPort) (echo.Answer, error) {
	var c *net.UDPConn
	if err := n.Do(func() error {
		var err error
		c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		return echo.Answer{}, fmt.Errorf("%s: udp to %s: %w", n.Name, addr, err)
	}
	defer func() { _ = c.Close() }()
	a, err := echo.AskUDP(ctx, c)
	if err != nil {
		return a, fmt.Errorf("%s: udp to %s: %w", n.Name, addr, err)
	}
	return a, nil
}

// ProbeSCTP reports whether SCTP sockets can be made in the namespace: nil,
// or an error wrapping echo.ErrSCTPUnsupported.
func (n *NetNS) ProbeSCTP() error {
	return n.Do(echo.ProbeSCTP)
}
