package nft

import (
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// Benchmarks of the applier's own work over the fake's kernel (which costs
// next to nothing), at cluster scale: 10k pod identities, 1k groups (1250
// deny chains), 100k allow elements. Numbers are reported, never asserted.

func benchDatapaths() (base, changed *model.Datapath) {
	base = bigDatapath(10000, 1000, 100000)
	changed = bigDatapath(10000, 1000, 100000)
	changed.IngressAllow[model.Allow{Group: 0x00200001, Ident: 0x00100001, Ports: tcp(5)}] = struct{}{}
	return base, changed
}

// BenchmarkApplyCold measures the first Apply: read (nothing), encode
// everything, plan, commit.
func BenchmarkApplyCold(b *testing.B) {
	d, _ := benchDatapaths()
	elements := encode(d).elems.count()
	for b.Loop() {
		if _, err := NewFake(Config{}).Apply(d); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(elements), "elements")
	b.ReportMetric(float64(elements)*float64(b.N)/b.Elapsed().Seconds(), "elements/s")
}

// BenchmarkApplyDelta measures an Apply that adds one allow element and
// one that removes it again (partial: no read).
func BenchmarkApplyDelta(b *testing.B) {
	base, changed := benchDatapaths()
	f := NewFake(Config{})
	if _, err := f.Apply(base); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.Apply(changed); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Apply(base); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(2*b.N), "µs/apply")
}

// BenchmarkApplyFullNoChange measures a full Apply (everything read back
// from the fake's memory, encoded and compared) that writes nothing: a
// restart.
func BenchmarkApplyFullNoChange(b *testing.B) {
	base, _ := benchDatapaths()
	f := NewFake(Config{})
	if _, err := f.Apply(base); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		f.Invalidate()
		if res, err := f.Apply(base); err != nil || res.Writes != 0 {
			b.Fatal(res, err)
		}
	}
}
