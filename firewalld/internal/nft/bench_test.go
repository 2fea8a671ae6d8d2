package nft

import (
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/netlink"
	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// Benchmarks of the applier's own work at cluster scale (benchDatapath:
// 10k pods, 1k local pods each isolated in a group of its own, 250 of
// them for egress too: 1250 group chains, 10250 rules; 500 namespace
// peers of 20 pods, an "all pods" peer and an ipBlock: 1004 peer sets,
// 22k elements), over the fake's kernel (which costs little) or over
// google/nftables with the kernel replaced by a test dialer (all of the
// Go work of a real write: the netlink messages are built). Numbers are
// reported, never asserted.

func benchDatapath() *model.Datapath { return bigDatapath(10000, 1000, 500) }

// podChange returns the deltas that add a new local pod (known, isolated
// for ingress in an existing group, in its namespace's peer and the "all
// pods" peer: four sets) to d and remove it again.
func podChange(d *model.Datapath) (add, del *model.Delta) {
	a := bigAddr(10001)
	elems := []model.PeerElem{{Peer: bigPeer(1), From: a, To: a}, {Peer: bigPeer(500), From: a, To: a}}
	next := d.Clone()
	add = model.NewDelta()
	add.KnownLocal.Put(next.KnownLocal, a)
	add.IngressGroup.Put(next.IngressGroup, a, bigGroup(1), model.EqID)
	for _, e := range elems {
		add.PeerElems.Put(next.PeerElems, e)
	}
	del = model.NewDelta()
	del.KnownLocal.Remove(next.KnownLocal, a)
	del.IngressGroup.Remove(next.IngressGroup, a)
	for _, e := range elems {
		del.PeerElems.Remove(next.PeerElems, e)
	}
	return add, del
}

// policyChange returns the deltas that change a group chain's rules (a
// policy's port) and back.
func policyChange(d *model.Datapath) (change, back *model.Delta) {
	k := model.GroupKey{Direction: model.Ingress, ID: bigGroup(1)}
	next := d.Clone()
	rules := slices.Clone(next.Chains[k])
	rules[1].Ports = tcp(8081)
	change = model.NewDelta()
	change.Chains.Put(next.Chains, k, rules, model.EqRules)
	back = model.NewDelta()
	back.Chains.Put(next.Chains, k, d.Chains[k], model.EqRules)
	return change, back
}

// timed runs f b.N times (b.N even: do and undo alternate) and reports
// the median and 99th percentile of its calls.
func timed(b *testing.B, f func(i int)) {
	ds := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		f(i)
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(ds[len(ds)*99/100].Nanoseconds())/1e3, "p99-µs")
}

// BenchmarkApplyCold measures the first Apply: read (nothing), plan
// everything, commit to the fake.
func BenchmarkApplyCold(b *testing.B) {
	d := benchDatapath()
	es, sets, chains := newState(d).content()
	for b.Loop() {
		if _, err := NewFake(Config{}).Apply(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(es.count()), "elements")
	b.ReportMetric(float64(len(sets)), "peer-sets")
	b.ReportMetric(float64(len(chains)), "chains")
}

// nullBackend takes every transaction and does nothing: what is left is
// the applier's own work.
type nullBackend struct{}

func (nullBackend) read(*ruleset) (*content, string, error) { return nil, "table missing", nil }
func (nullBackend) commit(*ruleset, *tx) error              { return nil }
func (nullBackend) delete() error                           { return nil }
func (nullBackend) counters() (Counters, error)             { return Counters{}, nil }

// capturingBackend is the real backend with google/nftables' messages
// built and sent to a test dialer instead of the kernel.
func capturingBackend() *kernel {
	return &kernel{testDial: func([]netlink.Message) ([]netlink.Message, error) { return nil, nil }}
}

// BenchmarkApplyDelta measures one ApplyDelta at cluster scale: a pod that
// comes and goes (alternately), a policy that changes a chain's rules and
// back. "state" is the applier alone (state and transaction), "messages"
// adds building the netlink batch (all the Go work of a real write),
// "fake" commits to the fake's kernel.
func BenchmarkApplyDelta(b *testing.B) {
	d := benchDatapath()
	podAdd, podDel := podChange(d)
	polChange, polBack := policyChange(d)
	for _, be := range []struct {
		name string
		be   func() backend
	}{
		{"state", func() backend { return nullBackend{} }},
		{"messages", func() backend { return capturingBackend() }},
		{"fake", func() backend { return &memKernel{} }},
	} {
		for _, change := range []struct {
			name     string
			do, undo *model.Delta
		}{{"pod", podAdd, podDel}, {"policy", polChange, polBack}} {
			b.Run(change.name+"/"+be.name, func(b *testing.B) {
				a := newApplier(Config{LogGroup: 1, LogRate: 10}, be.be())
				if _, err := a.apply(d); err != nil {
					b.Fatal(err)
				}
				timed(b, func(i int) {
					delta := change.do
					if i%2 == 1 {
						delta = change.undo
					}
					if res, err := a.applyDelta(d, delta); err != nil || res.Full || res.Writes == 0 {
						b.Fatal(res, err)
					}
				})
			})
		}
	}
}

// BenchmarkApplyPartial measures the same pod change through Apply (a
// diff of the whole Datapath with the last one): what ApplyDelta saves.
func BenchmarkApplyPartial(b *testing.B) {
	base := benchDatapath()
	with := base.Clone()
	add, _ := podChange(base)
	add.ApplyTo(with)
	a := newApplier(Config{}, nullBackend{})
	if _, err := a.apply(base); err != nil {
		b.Fatal(err)
	}
	timed(b, func(i int) {
		d := with
		if i%2 == 1 {
			d = base
		}
		if res, err := a.apply(d); err != nil || res.Writes == 0 {
			b.Fatal(res, err)
		}
	})
}

// BenchmarkApplyFullNoChange measures a full Apply (everything read back
// from the fake's memory and compared) that writes nothing: a restart.
func BenchmarkApplyFullNoChange(b *testing.B) {
	d := benchDatapath()
	f := NewFake(Config{})
	if _, err := f.Apply(d); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f.Invalidate()
		if res, err := f.Apply(d); err != nil || res.Writes != 0 {
			b.Fatal(res, err)
		}
	}
}
