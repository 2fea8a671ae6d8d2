//go:build kernel && vm

package routes

// IPIP tunnels between two nodes, with real TCP through them. The host
// kernel has no ipip; Debian's kernel in the project's VM has:
//
//	make vmexec vm-assets
//	go test -tags kernel,vm -exec $PWD/_output/bin/vmexec ./routerd/internal/routes/
//
// Address plan (namespaces of each test):
//
//	router  ra 198.18.1.1/24, rb 198.18.2.1/24, forwards; knows no pod CIDR,
//	        so pod traffic only gets across inside the tunnels
//	node A  eth0 198.18.1.2/24 (default via .1), pod 198.18.64.1/24;
//	        pod CIDR 198.18.64.0/24, tunnel to B
//	node B  eth0 198.18.2.2/24 (default via .1), pod 198.18.65.1/24;
//	        pod CIDR 198.18.65.0/24, tunnel to A
//	pod A   eth0 198.18.64.10/24, default via .1
//	pod B   eth0 198.18.65.10/24, default via .1, serves TCP

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/routerd/internal/model"
)

const runInVM = "run in the VM: make vmexec vm-assets && go test -tags kernel,vm -exec $PWD/_output/bin/vmexec ./routerd/internal/routes/"

var (
	nodeA, nodeB = netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("198.18.2.2")
	podA, podB   = netip.MustParseAddr("198.18.64.10"), netip.MustParseAddr("198.18.65.10")
	cidrA, cidrB = netip.MustParsePrefix("198.18.64.0/24"), netip.MustParsePrefix("198.18.65.0/24")
	// cidrB2 is a second prefix of B's, routed into the tunnel without a
	// next hop (the other shape of tunnel route).
	cidrB2 = netip.MustParsePrefix("198.18.66.0/24")
)

// requireIPIP skips unless the kernel makes IPIP links (not the host's).
func requireIPIP(tb testing.TB) {
	tb.Helper()
	netnstest.RequireRoot(tb, "creates network namespaces and IPIP links; "+runInVM)
	h := netnstest.Handle(tb, netnstest.New(tb))
	err := h.LinkAdd(&netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: "nnip-probe"}, Remote: net.IP{198, 18, 250, 2}})
	if err != nil {
		tb.Skipf("no IPIP links in this kernel (%v); %s", err, runInVM)
	}
}

// pair is two nodes joined through a router, each with a pod behind it.
type pair struct {
	a, b       *node
	podA, podB netns.NsHandle
}

func newPair(tb testing.TB) *pair {
	tb.Helper()
	requireIPIP(tb)
	r := netnstest.New(tb)
	p := &pair{a: &node{ns: netnstest.New(tb)}, b: &node{ns: netnstest.New(tb)}, podA: netnstest.New(tb), podB: netnstest.New(tb)}
	netnstest.Veth(tb, netnstest.End{NS: r, Name: "ra", Addrs: []string{"198.18.1.1/24"}}, netnstest.End{NS: p.a.ns, Name: "eth0", Addrs: []string{"198.18.1.2/24"}})
	netnstest.Veth(tb, netnstest.End{NS: r, Name: "rb", Addrs: []string{"198.18.2.1/24"}}, netnstest.End{NS: p.b.ns, Name: "eth0", Addrs: []string{"198.18.2.2/24"}})
	netnstest.Veth(tb, netnstest.End{NS: p.a.ns, Name: "pod", Addrs: []string{"198.18.64.1/24"}}, netnstest.End{NS: p.podA, Name: "eth0", Addrs: []string{"198.18.64.10/24"}})
	netnstest.Veth(tb, netnstest.End{NS: p.b.ns, Name: "pod", Addrs: []string{"198.18.65.1/24"}}, netnstest.End{NS: p.podB, Name: "eth0", Addrs: []string{"198.18.65.10/24"}})
	for _, ns := range []netns.NsHandle{r, p.a.ns, p.b.ns} {
		sysctl(tb, ns, "net.ipv4.ip_forward", "1")
	}
	for _, d := range []struct {
		ns netns.NsHandle
		gw string
	}{{p.a.ns, "198.18.1.1"}, {p.b.ns, "198.18.2.1"}, {p.podA, "198.18.64.1"}, {p.podB, "198.18.65.1"}} {
		addRoute(tb, netnstest.Handle(tb, d.ns), &netlink.Route{Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, Gw: net.ParseIP(d.gw)})
	}
	p.a.h, p.b.h = netnstest.Handle(tb, p.a.ns), netnstest.Handle(tb, p.b.ns)
	p.a.k, p.b.k = p.a.kernel(tb, Config{}), p.b.kernel(tb, Config{})
	return p
}

// desired is what routerd on one node wants: a tunnel to the other node
// and its pod CIDR(s) into it.
func desired(local, remote netip.Addr, cidrs ...netip.Prefix) Desired {
	t := model.Tunnel{Name: model.TunnelName(remote), Local: local, Remote: remote, MTU: 1480}
	d := Desired{Tunnels: []model.Tunnel{t}}
	for i, c := range cidrs {
		r := model.Route{Prefix: c, NextHop: remote, Tunnel: t.Name}
		if i > 0 {
			r.NextHop = netip.Addr{}
		}
		d.Routes = append(d.Routes, r)
	}
	return d
}

func (p *pair) desiredA() Desired { return desired(nodeA, nodeB, cidrB, cidrB2) }
func (p *pair) desiredB() Desired { return desired(nodeB, nodeA, cidrA) }

func sysctl(tb testing.TB, ns netns.NsHandle, name, value string) {
	tb.Helper()
	path := filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/"))
	if err := netnstest.InNetns(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) }); err != nil {
		tb.Fatalf("sysctl %s=%s: %v", name, value, err)
	}
}

// serve answers each line of every TCP connection to addr in ns with
// "pong <client address>".
func serve(tb testing.TB, ns netns.NsHandle, addr netip.AddrPort) {
	tb.Helper()
	var ln net.Listener
	if err := netnstest.InNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr.String())
		return err
	}); err != nil {
		tb.Fatalf("listen %s: %v", addr, err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				s := bufio.NewScanner(c)
				from := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr()
				for s.Scan() {
					if _, err := fmt.Fprintf(c, "pong %s\n", from); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// talk connects from ns to addr, sends a line and reads the answer.
func talk(ns netns.NsHandle, addr netip.AddrPort) (string, error) {
	var answer string
	err := netnstest.InNetns(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr.String(), 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := fmt.Fprintln(c, "ping"); err != nil {
			return err
		}
		answer, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return answer, err
}

// wantTCP waits until a TCP connection from pod A to pod B works, pod B
// seeing pod A's own address (neighbour resolution on four links and SYN
// retransmission take a moment under emulation).
func (p *pair) wantTCP(tb testing.TB) {
	tb.Helper()
	to := netip.AddrPortFrom(podB, 8080)
	netnstest.WaitFor(tb, 30*time.Second, 100*time.Millisecond, "TCP pod A → pod B through the tunnels", func() (bool, string) {
		got, err := talk(p.podA, to)
		if err != nil {
			return false, err.Error()
		}
		return got == "pong "+podA.String()+"\n", fmt.Sprintf("answer %q", got)
	})
}

func TestVMTunnelCarriesTCP(t *testing.T) {
	p := newPair(t)
	serve(t, p.podB, netip.AddrPortFrom(podB, 8080))
	wantResult(t, mustApply(t, p.a.k, p.desiredA()), Result{TunnelsAdded: 1, RoutesAdded: 2, Full: true, Messages: 3})
	wantResult(t, mustApply(t, p.b.k, p.desiredB()), Result{TunnelsAdded: 1, RoutesAdded: 1, Full: true, Messages: 2})
	p.wantTCP(t)

	// The router knows no pod CIDR: the traffic came through B's tunnel.
	if l, err := p.b.h.LinkByName(model.TunnelName(nodeA)); err != nil || l.Attrs().Statistics == nil || l.Attrs().Statistics.RxPackets == 0 {
		t.Fatalf("B's tunnel received nothing: %v %+v", err, l)
	}

	wantInstalled(t, p.a.k, p.desiredA().Routes)
	wantStrings(t, "node A", routeStrings(t, p.a.h, dump(t, p.a.h, mainTable, DefaultProtocol)), []string{
		"198.18.65.0/24 via 198.18.2.2 onlink proto 196 table 254 metric 0",
		"198.18.66.0/24 proto 196 table 254 metric 0",
	})
	l, err := p.a.h.LinkByName(model.TunnelName(nodeB))
	if err != nil {
		t.Fatal(err)
	}
	ip, ok := l.(*netlink.Iptun)
	if !ok || !ip.Local.Equal(nodeA.AsSlice()) || !ip.Remote.Equal(nodeB.AsSlice()) || ip.MTU != 1480 || ip.Flags&net.FlagUp == 0 {
		t.Fatalf("link %T %+v", l, l)
	}
	// A restarted routerd adopts both shapes of tunnel route and the
	// link: nothing to write.
	wantResult(t, mustApply(t, p.a.kernel(t, Config{}), p.desiredA()), Result{Full: true})
}

// TestVMTunnelRepaired: someone changes routerd's tunnel (MTU and down,
// which drops its routes; then other endpoints); after Invalidate Apply
// fixes it and writes its routes again, and traffic flows again.
func TestVMTunnelRepaired(t *testing.T) {
	p := newPair(t)
	serve(t, p.podB, netip.AddrPortFrom(podB, 8080))
	mustApply(t, p.a.k, p.desiredA())
	mustApply(t, p.b.k, p.desiredB())
	p.wantTCP(t)
	name := model.TunnelName(nodeB)

	l, err := p.a.h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.a.h.LinkSetMTU(l, 1300); err != nil {
		t.Fatal(err)
	}
	if err := p.a.h.LinkSetDown(l); err != nil {
		t.Fatal(err)
	}
	wantInstalled(t, p.a.k, nil) // the kernel dropped them with the link down
	p.a.k.Invalidate()
	wantResult(t, mustApply(t, p.a.k, p.desiredA()), Result{TunnelsChanged: 1, RoutesAdded: 2, Full: true, Messages: 4})
	p.wantTCP(t)

	if err := p.a.h.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	other := &netlink.Iptun{LinkAttrs: netlink.LinkAttrs{Name: name}, Local: nodeA.AsSlice(), Remote: net.IP{198, 18, 2, 99}}
	if err := p.a.h.LinkAdd(other); err != nil {
		t.Fatal(err)
	}
	p.a.k.Invalidate()
	wantResult(t, mustApply(t, p.a.k, p.desiredA()), Result{TunnelsChanged: 1, RoutesAdded: 2, Full: true, Messages: 4})
	l, err = p.a.h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if ip, ok := l.(*netlink.Iptun); !ok || !ip.Remote.Equal(nodeB.AsSlice()) {
		t.Fatalf("link after repair: %+v", l)
	}
	p.wantTCP(t)
	p.a.k.Invalidate()
	wantResult(t, mustApply(t, p.a.k, p.desiredA()), Result{Full: true})
}

// TestVMTunnelRemovedAfterItsRoutes: a tunnel nobody wants goes after its
// routes, each deleted explicitly (the kernel would drop them with the
// link, silently: IPv4 sends no RTM_DELROUTE for those), as the kernel's
// own notifications show, in order.
func TestVMTunnelRemovedAfterItsRoutes(t *testing.T) {
	p := newPair(t)
	mustApply(t, p.a.k, p.desiredA())
	events := subscribe(t, p.a.ns)

	wantResult(t, mustApply(t, p.a.k, Desired{}), Result{RoutesRemoved: 2, TunnelsRemoved: 1, Messages: 3})
	name := model.TunnelName(nodeB)
	want := []string{"del route 198.18.65.0/24", "del route 198.18.66.0/24", "del link " + name}
	if got := events(); !slices.Equal(got, want) {
		t.Fatalf("notifications, in order =\n%q\nwant\n%q", got, want)
	}
	if _, err := p.a.h.LinkByName(name); !errors.As(err, new(netlink.LinkNotFoundError)) {
		t.Fatalf("link %s still there: %v", name, err)
	}
	wantInstalled(t, p.a.k, nil)
}

// subscribe listens to route and link notifications in ns on one socket
// (so their order is the kernel's); the returned function lists those of
// routerd's protocol and links, in order, and never waits: the kernel
// sends them while it handles the requests.
func subscribe(tb testing.TB, ns netns.NsHandle) func() []string {
	tb.Helper()
	fd, err := socketAt(int(ns))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK | unix.RTMGRP_IPV4_ROUTE}); err != nil {
		tb.Fatal(err)
	}
	return func() []string {
		var out []string
		buf := make([]byte, 1<<16)
		for {
			n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
			if errors.Is(err, unix.EAGAIN) {
				return out
			}
			if err != nil {
				tb.Fatal(err)
			}
			msgs, err := syscall.ParseNetlinkMessage(buf[:n])
			if err != nil {
				tb.Fatal(err)
			}
			for _, m := range msgs {
				out = append(out, event(m)...)
			}
		}
	}
}

func event(m syscall.NetlinkMessage) []string {
	switch m.Header.Type {
	case unix.RTM_DELROUTE:
		rt := nl.DeserializeRtMsg(m.Data)
		if rt.Protocol != DefaultProtocol {
			return nil
		}
		attrs, _ := nl.ParseRouteAttr(m.Data[rt.Len():])
		for _, a := range attrs {
			if a.Attr.Type == unix.RTA_DST {
				return []string{fmt.Sprintf("del route %s/%d", net.IP(a.Value), rt.Dst_len)}
			}
		}
	case unix.RTM_DELLINK:
		attrs, _ := nl.ParseRouteAttr(m.Data[unix.SizeofIfInfomsg:])
		for _, a := range attrs {
			if a.Attr.Type == unix.IFLA_IFNAME {
				return []string{"del link " + strings.TrimRight(string(a.Value), "\x00")}
			}
		}
	}
	return nil
}
