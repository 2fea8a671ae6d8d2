package nft

import (
	"testing"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// BenchmarkApplyDelta measures the applier's own work for a one-element
// change beside 10k VIPs (the fake's kernel costs nothing).
func BenchmarkApplyDelta(b *testing.B) {
	s := bigState()
	d := Build(s, basePods)
	s.Services = append(s.Services, vs(key("198.19.200.1", 443, model.TCP), model.ClusterIP))
	d1 := Build(s, basePods)
	f := NewFake()
	if _, err := f.Apply(d); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := f.Apply(d1); err != nil {
			b.Fatal(err)
		}
		if _, err := f.Apply(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuild measures Build for 10k VIPs.
func BenchmarkBuild(b *testing.B) {
	s := bigState()
	for b.Loop() {
		Build(s, basePods)
	}
}
