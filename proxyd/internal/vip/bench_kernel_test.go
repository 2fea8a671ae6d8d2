//go:build kernel

package vip

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The benchmarks show that proxyd's layout stays linear: the cost of a VIP
// as a local route does not grow with the number of VIPs, while a VIP as a
// /32 address of one link (kube-proxy's and kube-router's layout) costs
// more with every address already there. Each reports ns/op (all n VIPs)
// and ns/vip; nothing asserts a time. On the host:
//
//	go test -tags kernel -run '^$' -bench . ./proxyd/internal/vip
//
// and in the VM, where dummy links exist (the host kernel has none, so the
// address comparison there uses lo):
//
//	go test -tags kernel,vm -exec "$PWD/_output/bin/vmexec -memory 2048" \
//	    -run '^$' -bench . -benchtime 1x ./proxyd/internal/vip

var benchSizes = []int{1000, 10000, 30000}

// benchEnv is a namespace of the benchmark's, with proxyd's implementation
// and a plain netlink handle in it.
type benchEnv struct {
	k *Kernel
	h *netlink.Handle
}

// benchWrites times write (n VIPs' worth) in one namespace; undo, untimed,
// restores the state write started from (first made by undo too, when
// undoFirst: the deletes start from n routes).
func benchWrites(b *testing.B, n int, undoFirst bool, write, undo func(benchEnv) error) {
	ns := netnstest.New(b)
	env := benchEnv{k: newKernel(b, ns), h: netnstest.Handle(b, ns)}
	if undoFirst {
		if err := undo(env); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if err := write(env); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := undo(env); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	reportPerVIP(b, n)
}

// reportPerVIP adds the cost per VIP to ns/op, which covers n VIPs.
func reportPerVIP(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/vip")
}

func each(vips []netip.Addr, f func(netip.Addr) error) error {
	for _, v := range vips {
		if err := f(v); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkLocalRoutes adds (or deletes) n VIPs as proxyd's local routes:
// in batches (AddAll, DeleteAll), one request each (Add, Delete), and with
// the netlink library's own call (Handle.RouteAdd, one request each) for
// reference.
func BenchmarkLocalRoutes(b *testing.B) {
	for _, n := range benchSizes {
		v4, v6 := vipRange(n, false), vipRange(n, true)
		addAll := func(vips []netip.Addr) func(benchEnv) error {
			return func(e benchEnv) error { return e.k.AddAll(vips) }
		}
		deleteAll := func(vips []netip.Addr) func(benchEnv) error {
			return func(e benchEnv) error { return e.k.DeleteAll(vips) }
		}
		b.Run(fmt.Sprintf("add/batched/vips=%d", n), func(b *testing.B) {
			benchWrites(b, n, false, addAll(v4), deleteAll(v4))
		})
		b.Run(fmt.Sprintf("add/batched-ipv6/vips=%d", n), func(b *testing.B) {
			benchWrites(b, n, false, addAll(v6), deleteAll(v6))
		})
		b.Run(fmt.Sprintf("add/one-by-one/vips=%d", n), func(b *testing.B) {
			benchWrites(b, n, false, func(e benchEnv) error { return each(v4, e.k.Add) }, deleteAll(v4))
		})
		b.Run(fmt.Sprintf("add/netlink-handle/vips=%d", n), func(b *testing.B) {
			benchWrites(b, n, false, func(e benchEnv) error {
				return each(v4, func(v netip.Addr) error { return e.h.RouteAdd(libRoute(v)) })
			}, deleteAll(v4))
		})
		b.Run(fmt.Sprintf("delete/batched/vips=%d", n), func(b *testing.B) {
			benchWrites(b, n, true, deleteAll(v4), addAll(v4))
		})
		b.Run(fmt.Sprintf("delete/one-by-one/vips=%d", n), func(b *testing.B) {
			benchWrites(b, n, true, func(e benchEnv) error { return each(v4, e.k.Delete) }, addAll(v4))
		})
	}
}

// libRoute is proxyd's route for v as the netlink library spells it.
func libRoute(v netip.Addr) *netlink.Route {
	return &netlink.Route{Dst: ipNet(netip.PrefixFrom(v, v.BitLen())), LinkIndex: loopbackIndex,
		Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_LOCAL, Scope: unix.RT_SCOPE_HOST,
		Protocol: RouteProtocol, Priority: RouteMetric}
}

// BenchmarkList lists n VIPs, alone and beside 20k main-table routes (as
// routerd's BGP routes would be), with List (the kernel filters the dump)
// and, for reference, with the netlink library's filtered list (the whole
// routing table is dumped and filtered in Go).
func BenchmarkList(b *testing.B) {
	for _, n := range []int{1000, 10000, 30000} {
		for _, others := range []int{0, 20000} {
			b.Run(fmt.Sprintf("vips=%d/main-routes=%d", n, others), func(b *testing.B) {
				ns := netnstest.New(b)
				k, h := newKernel(b, ns), netnstest.Handle(b, ns)
				if err := k.AddAll(vipRange(n, false)); err != nil {
					b.Fatal(err)
				}
				if err := addMainRoutes(h, others); err != nil {
					b.Fatal(err)
				}
				b.Run("List", func(b *testing.B) {
					for b.Loop() {
						got, err := k.List()
						if err != nil || len(got) != n {
							b.Fatalf("List: %d VIPs, %v", len(got), err)
						}
					}
				})
				b.Run("netlink-handle", func(b *testing.B) {
					filter := &netlink.Route{Table: unix.RT_TABLE_LOCAL, Protocol: RouteProtocol, Type: unix.RTN_LOCAL}
					mask := netlink.RT_FILTER_TABLE | netlink.RT_FILTER_PROTOCOL | netlink.RT_FILTER_TYPE
					for b.Loop() {
						got, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, mask)
						if err != nil || len(got) != n {
							b.Fatalf("RouteListFiltered: %d routes, %v", len(got), err)
						}
					}
				})
			})
		}
	}
}

// addMainRoutes adds n /32 routes of the pods' range (198.18.128.0/17) to
// the main table through lo, protocol 78 (routerd's): what a node's table
// holds besides the VIPs. Nothing is sent along them.
func addMainRoutes(h *netlink.Handle, n int) error {
	dst := netip.MustParseAddr("198.18.128.0")
	for range n {
		r := &netlink.Route{Dst: ipNet(netip.PrefixFrom(dst, 32)), LinkIndex: loopbackIndex,
			Scope: unix.RT_SCOPE_LINK, Protocol: 78}
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("main route %s: %w", dst, err)
		}
		dst = dst.Next()
	}
	return nil
}

// BenchmarkAddresses adds n VIPs as /32 addresses of one link, the layout
// proxyd avoids: of a dummy link, as kube-proxy (kube-ipvs0) and
// kube-router (kube-dummy-if) do, where the kernel has dummy links (the
// VM), else of lo (the host). Each iteration starts from a new namespace.
// Its teardown is not timed, but the kernel does it in the background
// after the namespace is closed, and with 30k addresses that takes long:
// which is why this benchmark comes last.
func BenchmarkAddresses(b *testing.B) {
	netnstest.RequireRoot(b, "creates network namespaces and routes in them (run as root with -tags kernel)")
	kind := "dummy"
	if _, _, done, err := addressLink(kind); err != nil {
		b.Logf("no dummy links in this kernel (%v): addresses go on lo; run in the VM for dummy links", err)
		kind = "lo"
	} else {
		done()
	}
	for _, n := range benchSizes {
		vips := vipRange(n, false)
		b.Run(fmt.Sprintf("%s/vips=%d", kind, n), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				h, link, done, err := addressLink(kind)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for _, v := range vips {
					if err := h.AddrAdd(link, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(v, 32))}); err != nil {
						b.Fatalf("address %s on %s: %v", v, kind, err)
					}
				}
				b.StopTimer()
				done()
				b.StartTimer()
			}
			reportPerVIP(b, n)
		})
	}
}

// addressLink makes a namespace with the link to put the addresses on (a
// new dummy link, or lo); done removes it.
func addressLink(kind string) (*netlink.Handle, netlink.Link, func(), error) {
	ns, err := netnstest.Create()
	if err != nil {
		return nil, nil, nil, err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		_ = ns.Close()
		return nil, nil, nil, err
	}
	done := func() { h.Close(); _ = ns.Close() }
	name := "lo"
	if kind == "dummy" {
		name = "vips0"
		if err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			done()
			return nil, nil, nil, fmt.Errorf("dummy link: %w", err)
		}
	}
	link, err := h.LinkByName(name)
	if err == nil {
		err = h.LinkSetUp(link)
	}
	if err != nil {
		done()
		return nil, nil, nil, err
	}
	return h, link, done, nil
}
