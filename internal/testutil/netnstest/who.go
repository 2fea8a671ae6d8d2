package netnstest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// ServeWho listens on addr (host:port; port 0 picks one) over TCP in ns
// and answers every connection with the client's address as the server
// saw it, then closes it: a test learns whether a NAT rewrote the source.
// It returns the listening address; the listener closes with the test.
func ServeWho(tb testing.TB, ns netns.NsHandle, addr string) netip.AddrPort {
	tb.Helper()
	var l net.Listener
	if err := InNetns(ns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		tb.Fatalf("listen on %s: %v", addr, err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
			_, _ = fmt.Fprintln(c, ap.Addr().Unmap())
			_ = c.Close()
		}
	}()
	ap, _ := netip.ParseAddrPort(l.Addr().String())
	return ap
}

// Who connects from ns (from src, when valid) to a ServeWho server at dst
// and returns the client address the server saw.
func Who(ctx context.Context, ns netns.NsHandle, src netip.Addr, dst netip.AddrPort) (netip.Addr, error) {
	var line string
	err := InNetns(ns, func() error {
		d := net.Dialer{}
		if src.IsValid() {
			d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		c, err := d.DialContext(ctx, "tcp", dst.String())
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		if dl, ok := ctx.Deadline(); ok {
			_ = c.SetDeadline(dl)
		}
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.ParseAddr(strings.TrimSpace(line))
}
