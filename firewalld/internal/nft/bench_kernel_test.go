//go:build kernel

package nft

import (
	"net/netip"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
)

// Benchmarks of the real table at cluster scale (benchDatapaths: 10k pod
// identities, 1k groups, 100k allow elements), each in namespaces of its
// own. Numbers are reported, never asserted.

func benchNetns(b *testing.B) netns.NsHandle {
	b.Helper()
	netnstest.RequireRoot(b, "creates network namespaces")
	ns, err := netnstest.Create()
	if err != nil {
		b.Fatal(err)
	}
	return ns
}

// BenchmarkKernelApplyCold measures creating the table with all its
// content, in a fresh namespace each time.
func BenchmarkKernelApplyCold(b *testing.B) {
	d, _ := benchDatapaths()
	elements := encode(d).elems.count()
	var writes int
	for range b.N {
		b.StopTimer()
		ns := benchNetns(b)
		tb := New(Config{NetNS: int(ns), LogGroup: 1, LogRate: 10})
		b.StartTimer()
		res, err := tb.Apply(d)
		if err != nil {
			b.Fatal(err)
		}
		writes = res.Writes
		b.StopTimer()
		_ = ns.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(elements), "elements")
	b.ReportMetric(float64(writes), "messages")
	b.ReportMetric(float64(elements)*float64(b.N)/b.Elapsed().Seconds(), "elements/s")
}

// BenchmarkKernelApplyDelta measures one Apply that adds one allow element
// beside the others and one that removes it (the kernel makes a
// transaction that deletes elements wait for an RCU grace period), and a
// group appearing and going (its deny chain, rule and elements).
func BenchmarkKernelApplyDelta(b *testing.B) {
	ns := benchNetns(b)
	defer func() { _ = ns.Close() }()
	tb := New(Config{NetNS: int(ns), LogGroup: 1, LogRate: 10})
	without, with := benchDatapaths()
	if _, err := tb.Apply(without); err != nil {
		b.Fatal(err)
	}
	withGroup, _ := benchDatapaths()
	withGroup.KnownLocal[addr("198.18.200.1")] = struct{}{}
	withGroup.IngressGroup[addr("198.18.200.1")] = 0x00400001
	for _, step := range []struct {
		name           string
		measured, back *model.Datapath
	}{
		{"add-element", with, without}, {"remove-element", without, with},
		{"add-group", withGroup, without}, {"remove-group", without, withGroup},
	} {
		b.Run(step.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				if _, err := tb.Apply(step.back); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := tb.Apply(step.measured); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkKernelFullNoChange measures a full Apply (everything read back
// from the kernel) that finds nothing to do: a restart.
func BenchmarkKernelFullNoChange(b *testing.B) {
	ns := benchNetns(b)
	defer func() { _ = ns.Close() }()
	tb := New(Config{NetNS: int(ns), LogGroup: 1, LogRate: 10})
	d, _ := benchDatapaths()
	if _, err := tb.Apply(d); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		tb.Invalidate()
		if res, err := tb.Apply(d); err != nil || res.Writes != 0 {
			b.Fatal(res, err)
		}
	}
}

// BenchmarkKernelCounters measures reading the counters of 1250 deny chains.
func BenchmarkKernelCounters(b *testing.B) {
	ns := benchNetns(b)
	defer func() { _ = ns.Close() }()
	tb := New(Config{NetNS: int(ns)})
	d, _ := benchDatapaths()
	if _, err := tb.Apply(d); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if c, err := tb.Counters(); err != nil || len(c.Denied) != 1250 {
			b.Fatal(len(c.Denied), err)
		}
	}
}

// BenchmarkKernelLoad measures how fast the kernel takes elements of each
// kind of set, each kind alone in a fresh table: a hash map (pod
// identities), an interval map (rbtree: regions), a concatenated interval
// set (pipapo: allow elements), a verdict map with its deny chains.
func BenchmarkKernelLoad(b *testing.B) {
	const n = 100000
	for _, kind := range []struct {
		name string
		d    func() *model.Datapath
	}{
		{"hash-map", func() *model.Datapath {
			d := model.NewDatapath()
			for i := range n {
				d.PodIdent[netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})] = model.ID(i % 500)
			}
			return d
		}},
		{"interval-map", func() *model.Datapath {
			d := model.NewDatapath()
			for i := range n {
				a := netip.AddrFrom4([4]byte{198, 18 + byte(i>>15), byte(i >> 7), byte(i<<1) & 0xfe})
				d.Regions = append(d.Regions, model.Region{From: a, To: a, Ident: model.ID(i % 500)})
			}
			return d
		}},
		{"concat-interval-set", func() *model.Datapath {
			d := bigDatapath(0, 1000, n)
			clear(d.KnownLocal)
			clear(d.IngressGroup)
			clear(d.EgressGroup)
			clear(d.IngressAny)
			d.Regions, d.LocalCIDRs = nil, nil
			return d
		}},
		{"verdict-map-1k-chains", func() *model.Datapath {
			d := model.NewDatapath()
			for i := range n {
				d.IngressGroup[netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})] = model.ID(i % 1000)
			}
			return d
		}},
	} {
		b.Run(kind.name, func(b *testing.B) {
			d := kind.d()
			elements := encode(d).elems.count()
			for range b.N {
				b.StopTimer()
				ns := benchNetns(b)
				tb := New(Config{NetNS: int(ns)})
				b.StartTimer()
				if _, err := tb.Apply(d); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = ns.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(elements), "elements")
			b.ReportMetric(float64(elements)*float64(b.N)/b.Elapsed().Seconds(), "elements/s")
		})
	}
}
