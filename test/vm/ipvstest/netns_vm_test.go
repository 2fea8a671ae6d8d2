//go:build vm

package ipvstest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requireIPVS skips the test unless it runs as root on a kernel with IPVS
// (the VM). The check itself runs in a throwaway namespace.
func requireIPVS(t *testing.T) {
	t.Helper()
	netnstest.RequireRoot(t, "creates network namespaces and uses IPVS; run in the VM: go test -tags vm -exec _output/bin/vmexec")
	ns := netnstest.New(t)
	err := netnstest.InNetns(ns, func() error {
		c, err := ipvs.New()
		if err != nil {
			return err
		}
		defer closeClient(c)
		_, err = c.Info()
		return err
	})
	if err != nil {
		t.Skipf("this kernel has no IPVS (%v); run in the VM: go test -tags vm -exec _output/bin/vmexec", err)
	}
}

// pollInterval is how often waits look at the kernel's state again.
const pollInterval = 50 * time.Millisecond

func defaultRoute(t *testing.T, ns netns.NsHandle, gw string) {
	t.Helper()
	if err := netnstest.Handle(t, ns).RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("default route via %s: %v", gw, err)
	}
}

// serveName listens on addr inside ns and answers every connection with
// name and a newline: which real server got a connection is visible to the
// client.
func serveName(t *testing.T, ns netns.NsHandle, addr, name string) {
	t.Helper()
	var l net.Listener
	err := netnstest.InNetns(ns, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s's netns: %v", addr, name, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return // closed by the cleanup
			}
			_, _ = io.WriteString(c, name+"\n")
			_ = c.Close()
		}
	}()
}

// askName connects to addr from inside ns and returns the line the server
// answered with.
func askName(ctx context.Context, ns netns.NsHandle, addr string) (string, error) {
	var c net.Conn
	err := netnstest.InNetns(ns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return strings.TrimSpace(line), nil
}

func closeClient(c ipvs.Client) {
	if cl, ok := c.(io.Closer); ok {
		_ = cl.Close()
	}
}
