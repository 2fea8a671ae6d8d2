//go:build kernel

package routes

// Benchmarks of the adapter against the host's kernel, in a namespace of
// their own (address plan: netns_kernel_test.go). Numbers are reported,
// never asserted:
//
//	go test -tags kernel -run '^$' -bench . -benchtime 5x ./routerd/internal/routes/

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

const benchRoutes = 5000

// table5k is 5000 /32 routes via the neighbour.
func table5k() Desired {
	d := Desired{Routes: make([]model.Route, 0, benchRoutes)}
	for i := range benchRoutes {
		d.Routes = append(d.Routes, direct(netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 32), hop4))
	}
	return d
}

// BenchmarkKernelInstall5k: 5000 routes into an empty table in one Apply
// (batched), the table emptied between iterations.
func BenchmarkKernelInstall5k(b *testing.B) {
	n := newNode(b, Config{})
	d := table5k()
	b.ResetTimer()
	var msgs, sends int
	var spent time.Duration
	for range b.N {
		n.k.Invalidate()
		sent := 0
		if n.k.b.bt != nil {
			sent = n.k.b.bt.sends
		}
		start := time.Now()
		res, err := n.k.Apply(d)
		spent += time.Since(start)
		if err != nil || res.RoutesAdded != benchRoutes {
			b.Fatalf("Apply: %+v %v", res, err)
		}
		msgs += res.Messages
		sends += n.k.b.bt.sends - sent
		b.StopTimer()
		if err := n.k.Delete(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(benchRoutes*b.N)/spent.Seconds(), "routes/s")
	b.ReportMetric(float64(msgs)/float64(b.N), "msgs/op")
	b.ReportMetric(float64(sends)/float64(b.N), "sendmsg/op")
}

// BenchmarkKernelInstall5kOneByOne: the same 5000 routes through
// vishvananda/netlink's RouteReplace, one request and one answer per
// route, for comparison.
func BenchmarkKernelInstall5kOneByOne(b *testing.B) {
	n := newNode(b, Config{})
	d := table5k()
	b.ResetTimer()
	var spent time.Duration
	for range b.N {
		start := time.Now()
		for _, r := range d.Routes {
			nr := &netlink.Route{
				Dst:      &net.IPNet{IP: r.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(r.Prefix.Bits(), 32)},
				Gw:       r.NextHop.AsSlice(),
				Protocol: netlink.RouteProtocol(DefaultProtocol),
			}
			if err := n.h.RouteReplace(nr); err != nil {
				b.Fatal(err)
			}
		}
		spent += time.Since(start)
		b.StopTimer()
		if err := n.k.Delete(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(benchRoutes*b.N)/spent.Seconds(), "routes/s")
	b.ReportMetric(benchRoutes, "msgs/op")
	b.ReportMetric(benchRoutes, "sendmsg/op")
}

// BenchmarkKernelRestart5k: a new adapter (a restarted routerd) applying
// the 5000 routes already there: one full read, nothing written.
func BenchmarkKernelRestart5k(b *testing.B) {
	n := newNode(b, Config{})
	d := table5k()
	mustApply(b, n.k, d)
	b.ResetTimer()
	var msgs int
	for range b.N {
		k := New(Config{NetNS: int(n.ns)})
		res, err := k.Apply(d)
		if err != nil || !res.Full {
			b.Fatalf("Apply: %+v %v", res, err)
		}
		msgs += res.Messages
		_ = k.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/restart")
	b.ReportMetric(float64(msgs)/float64(b.N), "msgs/op")
}

// BenchmarkKernelChangeOne5k: one route's next hop changes in a table of
// 5000 the adapter trusts: the diff over the whole desired set, one
// message.
func BenchmarkKernelChangeOne5k(b *testing.B) {
	n := newNode(b, Config{})
	d := table5k()
	mustApply(b, n.k, d)
	b.ResetTimer()
	var msgs int
	for i := range b.N {
		r := &d.Routes[i%benchRoutes]
		r.NextHop = map[bool]netip.Addr{true: hop4b, false: hop4}[r.NextHop == hop4]
		res, err := n.k.Apply(d)
		if err != nil || res.RoutesReplaced != 1 || res.Full {
			b.Fatalf("Apply: %+v %v", res, err)
		}
		msgs += res.Messages
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/change")
	b.ReportMetric(float64(msgs)/float64(b.N), "msgs/op")
}
