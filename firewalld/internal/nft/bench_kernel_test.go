//go:build kernel

package nft

import (
	"net/netip"
	"testing"
	"time"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
)

// Benchmarks of the real table at cluster scale (benchDatapath: 10k pods,
// 1250 group chains, 1004 peer sets), each in namespaces of its own.
// Numbers are reported, never asserted.

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
	d := benchDatapath()
	es, sets, chains := newState(d).content()
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
	b.ReportMetric(float64(es.count()), "elements")
	b.ReportMetric(float64(len(sets)), "peer-sets")
	b.ReportMetric(float64(len(chains)), "chains")
	b.ReportMetric(float64(writes), "messages")
}

// BenchmarkKernelApplyDelta measures one ApplyDelta at cluster scale, each
// kind of change done and undone alternately (p50 and p99 of both): a pod
// that comes (known, in a group, in two peers: four elements) and goes,
// the same pod not isolated (no verdict map element), a pod joining and
// leaving a peer only, a policy changing a chain's rules (ns/op: the mean
// of all). Adding a
// verdict map element that jumps to a chain, or a rule, makes the kernel
// validate every chain a base chain reaches (the whole table) at commit;
// a transaction that deletes elements waits for an RCU grace period.
func BenchmarkKernelApplyDelta(b *testing.B) {
	ns := benchNetns(b)
	defer func() { _ = ns.Close() }()
	d := benchDatapath()
	tb := New(Config{NetNS: int(ns), LogGroup: 1, LogRate: 10})
	if _, err := tb.Apply(d); err != nil {
		b.Fatal(err)
	}
	podAdd, podDel := podChange(d)
	polChange, polBack := policyChange(d)
	open := func() (add, del *model.Delta) {
		add, del = model.NewDelta(), model.NewDelta()
		a := bigAddr(10003)
		e := model.PeerElem{Peer: bigPeer(2), From: a, To: a}
		add.KnownLocal.Add[a] = struct{}{}
		add.PeerElems.Add[e] = struct{}{}
		del.KnownLocal.Del[a] = struct{}{}
		del.PeerElems.Del[e] = struct{}{}
		return add, del
	}
	openAdd, openDel := open()
	peer := func() (add, del *model.Delta) {
		add, del = model.NewDelta(), model.NewDelta()
		a := netip.MustParseAddr("198.18.200.9")
		e := model.PeerElem{Peer: bigPeer(2), From: a, To: a}
		add.PeerElems.Add[e] = struct{}{}
		del.PeerElems.Del[e] = struct{}{}
		return add, del
	}
	peerAdd, peerDel := peer()
	for _, c := range []struct {
		name     string
		do, undo *model.Delta
	}{
		{"pod-isolated", podAdd, podDel},
		{"pod-not-isolated", openAdd, openDel},
		{"peer-element", peerAdd, peerDel},
		{"policy", polChange, polBack},
	} {
		b.Run(c.name, func(b *testing.B) {
			// Ten of each per iteration: make bench runs one.
			var dos, undos []time.Duration
			for range 10 * b.N {
				for i, delta := range []*model.Delta{c.do, c.undo} {
					start := time.Now()
					if res, err := tb.ApplyDelta(d, delta); err != nil || res.Full || res.Writes == 0 {
						b.Fatal(res, err)
					}
					if i == 0 {
						dos = append(dos, time.Since(start))
					} else {
						undos = append(undos, time.Since(start))
					}
				}
			}
			var total time.Duration
			for i := range dos {
				total += dos[i] + undos[i]
			}
			b.ReportMetric(float64(total.Nanoseconds())/float64(2*len(dos)), "ns/op")
			b.ReportMetric(float64(median(dos).Microseconds()), "do-p50-µs")
			b.ReportMetric(float64(median(undos).Microseconds()), "undo-p50-µs")
		})
	}
}

// BenchmarkKernelFullNoChange measures a full Apply (everything read back
// from the kernel) that finds nothing to do: a restart.
func BenchmarkKernelFullNoChange(b *testing.B) {
	ns := benchNetns(b)
	defer func() { _ = ns.Close() }()
	tb := New(Config{NetNS: int(ns), LogGroup: 1, LogRate: 10})
	d := benchDatapath()
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

// BenchmarkKernelCounters measures reading the counters of 1250 group
// chains.
func BenchmarkKernelCounters(b *testing.B) {
	ns := benchNetns(b)
	defer func() { _ = ns.Close() }()
	tb := New(Config{NetNS: int(ns)})
	d := benchDatapath()
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
// kind of set, each kind alone in a fresh table: a hash set (known pods),
// an interval set (rbtree: a peer of 100k pods, and 1k peers of 100), a
// verdict map jumping to 1k chains.
func BenchmarkKernelLoad(b *testing.B) {
	const n = 100000
	for _, kind := range []struct {
		name string
		d    func() *model.Datapath
	}{
		{"hash-set", func() *model.Datapath {
			d := model.NewDatapath()
			for i := range n {
				d.KnownLocal[bigAddr(i)] = struct{}{}
			}
			return d
		}},
		{"interval-set-1-peer", func() *model.Datapath {
			d := model.NewDatapath()
			d.Chains[model.GroupKey{Direction: model.Ingress, ID: 1}] = []model.Rule{{Peer: 7, Ports: tcp(80)}}
			for i := range n {
				d.PeerElems[model.PeerElem{Peer: 7, From: bigAddr(i), To: bigAddr(i)}] = struct{}{}
			}
			return d
		}},
		{"interval-sets-1k-peers", func() *model.Datapath {
			d := model.NewDatapath()
			var rules []model.Rule
			for p := range 1000 {
				rules = append(rules, model.Rule{Peer: bigPeer(p), Ports: tcp(80)})
			}
			d.Chains[model.GroupKey{Direction: model.Ingress, ID: 1}] = rules
			for i := range n {
				d.PeerElems[model.PeerElem{Peer: bigPeer(i % 1000), From: bigAddr(i), To: bigAddr(i)}] = struct{}{}
			}
			return d
		}},
		{"verdict-map-1k-chains", func() *model.Datapath {
			d := model.NewDatapath()
			for i := range n {
				d.IngressGroup[bigAddr(i)] = model.ID(i % 1000)
			}
			return d
		}},
	} {
		b.Run(kind.name, func(b *testing.B) {
			d := kind.d()
			es, _, _ := newState(d).content()
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
			b.ReportMetric(float64(es.count()), "elements")
			b.ReportMetric(float64(es.count())*float64(b.N)/b.Elapsed().Seconds(), "elements/s")
		})
	}
}
