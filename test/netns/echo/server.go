package echo

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
)

// Server answers echo requests on any number of listeners under one name.
// Close stops every listener and connection and waits for the goroutines.
type Server struct {
	name string

	mu      sync.Mutex
	closed  bool
	closers map[io.Closer]struct{} // listeners, packet conns and live connections
	wg      sync.WaitGroup
}

// NewServer returns a server that answers as name (the pod's name).
func NewServer(name string) *Server {
	return &Server{name: name, closers: map[io.Closer]struct{}{}}
}

// Name is who the server answers as.
func (s *Server) Name() string { return s.name }

// track registers c to be closed by Close; false when the server is closed
// already (then c is closed here).
func (s *Server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
		return false
	}
	s.closers[c] = struct{}{}
	return true
}

func (s *Server) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.closers, c)
	s.mu.Unlock()
	_ = c.Close()
}

// Close stops the server: listeners, packet sockets and open connections
// are closed, and Close returns when all their goroutines are done.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	cs := s.closers
	s.closers = map[io.Closer]struct{}{}
	s.mu.Unlock()
	for c := range cs {
		_ = c.Close()
	}
	s.wg.Wait()
	return nil
}

// ServeTCP answers the connections accepted on ln until Close.
func (s *Server) ServeTCP(ln net.Listener) {
	if !s.track(ln) {
		return
	}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed; Accept errors on a live listener are not retried here
			}
			src, dst := tcpAddrPort(c.RemoteAddr()), tcpAddrPort(c.LocalAddr())
			s.serveStream(c, "tcp", src, dst)
		}
	})
}

// ServeSCTP answers the associations accepted on ln until Close.
func (s *Server) ServeSCTP(ln *SCTPListener) {
	if !s.track(ln) {
		return
	}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.serveStream(c, "sctp", c.RemoteAddr(), c.LocalAddr())
		}
	})
}

// serveStream answers each request line of one connection until the client
// closes it (a connection may carry many requests: a long-lived session is
// how tests see whether an established connection survives a change).
func (s *Server) serveStream(c io.ReadWriteCloser, proto string, src, dst netip.AddrPort) {
	if !s.track(c) {
		return
	}
	s.wg.Go(func() {
		defer s.untrack(c)
		sc := bufio.NewScanner(c)
		sc.Buffer(make([]byte, 0, 256), maxLine)
		for sc.Scan() {
			out, err := encodeAnswer(Answer{Name: s.name, Proto: proto, Source: src, Destination: dst, Payload: parseRequest(sc.Bytes())})
			if err != nil {
				return
			}
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})
}

func tcpAddrPort(a net.Addr) netip.AddrPort {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	ap := ta.AddrPort()
	// An AF_INET socket reports its addresses in 16-byte form.
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// errClosed reports whether err only says the socket was closed under us.
func errClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
