//go:build kernel

package nft

// Helpers of the kernel tests: network namespaces the test creates (the
// host's namespace is never touched), veth pairs, a bridge, routes,
// namespace-local sysctls, and TCP servers that answer with the address
// they saw the client come from.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces (go test -tags kernel as root)")
	}
}

// onThread runs fn on a locked OS thread and puts the thread back into its
// namespace; a thread that cannot go back stays locked, so the runtime
// discards it instead of reusing it in the wrong namespace.
func onThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer func() { _ = orig.Close() }()
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			done <- errors.Join(ferr, fmt.Errorf("back to the original namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		done <- ferr
	}()
	return <-done
}

// inNetns runs fn in ns: the sockets it opens belong to ns.
func inNetns(ns netns.NsHandle, fn func() error) error {
	return onThread(func() error {
		if err := netns.Set(ns); err != nil {
			return err
		}
		return fn()
	})
}

// newNetns creates a namespace with lo up, gone when the test ends.
func newNetns(t *testing.T) netns.NsHandle {
	t.Helper()
	requireRoot(t)
	var ns netns.NsHandle
	if err := onThread(func() (err error) {
		ns, err = netns.New()
		return err
	}); err != nil {
		t.Fatalf("new netns: %v", err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	h := nlHandle(t, ns)
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	return ns
}

func nlHandle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// end is one side of a veth pair: its namespace, name and addresses
// (CIDR notation).
type end struct {
	ns    netns.NsHandle
	name  string
	addrs []string
}

func vethPair(t *testing.T, a, b end) {
	t.Helper()
	ha := nlHandle(t, a.ns)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a.name}, PeerName: b.name, PeerNamespace: netlink.NsFd(int(b.ns))}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s/%s: %v", a.name, b.name, err)
	}
	upWithAddrs(t, a.ns, a.name, a.addrs...)
	upWithAddrs(t, b.ns, b.name, b.addrs...)
}

// upWithAddrs sets link name up with addrs; IPv6 ones skip duplicate
// address detection, so they are usable at once.
func upWithAddrs(t *testing.T, ns netns.NsHandle, name string, addrs ...string) {
	t.Helper()
	h := nlHandle(t, ns)
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	for _, s := range addrs {
		a, err := netlink.ParseAddr(s)
		if err != nil {
			t.Fatal(err)
		}
		if a.IP.To4() == nil {
			a.Flags |= unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(l, a); err != nil {
			t.Fatalf("address %s on %s: %v", s, name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("%s up: %v", name, err)
	}
}

// newBridge creates a bridge with a fixed MAC (its MAC would otherwise
// follow its ports) and addrs.
func newBridge(t *testing.T, ns netns.NsHandle, name string, addrs ...string) {
	t.Helper()
	h := nlHandle(t, ns)
	mac, _ := net.ParseMAC("02:00:c6:12:80:01")
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}}); err != nil {
		t.Fatalf("bridge %s: %v", name, err)
	}
	upWithAddrs(t, ns, name, addrs...)
}

// attach puts a pod namespace on the bridge of node: eth0 in the pod, with
// addrs, default routes through gateways.
func attach(t *testing.T, node netns.NsHandle, bridge, port string, pod netns.NsHandle, addrs []string, gateways ...string) {
	t.Helper()
	vethPair(t, end{node, port, nil}, end{pod, "eth0", addrs})
	h := nlHandle(t, node)
	br, err := h.LinkByName(bridge)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.LinkByName(port)
	if err == nil {
		err = h.LinkSetMaster(p, br)
	}
	if err != nil {
		t.Fatalf("%s on %s: %v", port, bridge, err)
	}
	for _, gw := range gateways {
		defaultRoute(t, pod, gw)
	}
}

func defaultRoute(t *testing.T, ns netns.NsHandle, gw string) {
	t.Helper()
	g := netip.MustParseAddr(gw)
	dst := "0.0.0.0/0"
	if g.Is6() {
		dst = "::/0"
	}
	route(t, ns, dst, gw)
}

func route(t *testing.T, ns netns.NsHandle, dst, via string) {
	t.Helper()
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := nlHandle(t, ns).RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(via)}); err != nil {
		t.Fatalf("route %s via %s: %v", dst, via, err)
	}
}

// sysctl writes a namespace-local sysctl (net.*) of ns.
func sysctl(t *testing.T, ns netns.NsHandle, name, value string) {
	t.Helper()
	path := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if err := inNetns(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		t.Fatalf("sysctl %s=%s: %v", name, value, err)
	}
}

// serveWho listens on addr (host:port) in ns; every connection gets the
// client's address as the server saw it, then is closed.
func serveWho(t *testing.T, ns netns.NsHandle, addr string) {
	t.Helper()
	var l net.Listener
	if err := inNetns(ns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = l.Close() })
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
}

// who connects from ns (from src, when valid) to dst and returns the
// client address the server saw.
func who(ctx context.Context, ns netns.NsHandle, src netip.Addr, dst netip.AddrPort) (netip.Addr, error) {
	var line string
	err := inNetns(ns, func() error {
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

// eventually polls cond every few milliseconds until it holds or timeout
// passes, and reports the last state.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, what, state)
		}
	}
}
