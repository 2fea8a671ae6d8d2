//go:build vm

package ipvstest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requireIPVS skips the test unless it runs as root on a kernel with IPVS
// (the VM). The check itself runs in a throwaway namespace.
func requireIPVS(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, IPVS); run in the VM: go test -tags vm -exec _output/bin/vmexec")
	}
	ns := newNetns(t)
	err := inNetns(ns, func() error {
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

// onThread runs fn on a locked OS thread, then puts the thread back into
// the network namespace it started in. A thread that cannot be put back
// stays locked, so the runtime discards it with the goroutine instead of
// reusing it in the wrong namespace.
func onThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("back to the original netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// inNetns runs fn on an OS thread switched into ns: sockets fn opens belong
// to ns.
func inNetns(ns netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		return fn()
	})
}

// newNetns creates an unnamed network namespace with lo up; the kernel
// removes it once the test closes its handle and the last socket in it is
// gone.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	err := onThread(func() (err error) {
		ns, err = netns.New() // also switches the thread into it
		return err
	})
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	h := handle(t, ns)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	return ns
}

// handle is a netlink handle bound to ns, closed with the test.
func handle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// end is one side of a veth pair.
type end struct {
	ns   netns.NsHandle
	name string
	addr string // CIDR
}

// vethPair links a and b, with their addresses, both up.
func vethPair(t *testing.T, a, b end) {
	t.Helper()
	ha, hb := handle(t, a.ns), handle(t, b.ns)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.name}, PeerName: b.name, PeerNamespace: netlink.NsFd(int(b.ns))}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s/%s: %v", a.name, b.name, err)
	}
	for _, e := range []struct {
		h *netlink.Handle
		end
	}{{ha, a}, {hb, b}} {
		if err := linkUpWithAddr(e.h, e.name, e.addr); err != nil {
			t.Fatal(err)
		}
	}
}

func linkUpWithAddr(h *netlink.Handle, name, cidr string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(l, a); err != nil {
		return fmt.Errorf("address %s on %s: %w", cidr, name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("link %s up: %w", name, err)
	}
	return nil
}

func defaultRoute(t *testing.T, ns netns.NsHandle, gw string) {
	t.Helper()
	if err := handle(t, ns).RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("default route via %s: %v", gw, err)
	}
}

// serveName listens on addr inside ns and answers every connection with
// name and a newline: which real server got a connection is visible to the
// client.
func serveName(t *testing.T, ns netns.NsHandle, addr, name string) {
	t.Helper()
	var l net.Listener
	err := inNetns(ns, func() (err error) {
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
	err := inNetns(ns, func() (err error) {
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

// waitFor polls cond until it reports done or timeout passes; cond's last
// explanation goes into the failure.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (done bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		done, state := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, timeout, state)
		}
		<-tick.C
	}
}

func closeClient(c ipvs.Client) {
	if cl, ok := c.(io.Closer); ok {
		_ = cl.Close()
	}
}
