//go:build kernel

package policy

import (
	"testing"
	"time"

	"github.com/nodenet/nodenet/firewalld/internal/nft"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
)

// BenchmarkFullSyncKernel: a cold full sync at 1k policies × 10k pods
// (compile, then one transaction into a fresh namespace's nftables), with
// 200 of the pods on the node or all of them, and a restart's (compile,
// read the table back, write nothing).
func BenchmarkFullSyncKernel(b *testing.B) {
	netnstest.RequireRoot(b, "programs nftables in a network namespace of its own")
	for _, tc := range []struct {
		name  string
		nodes int
	}{{"local=200", 50}, {"local=all", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			in := scaleInput(100, 10, 10, tc.nodes, 10)
			var compile, apply, restart time.Duration
			var writes int
			for b.Loop() {
				b.StopTimer()
				ns := netnstest.New(b)
				b.StartTimer()
				start := time.Now()
				res := Compile(in)
				compile += time.Since(start)
				t := nft.New(nft.Config{NetNS: int(ns)})
				start = time.Now()
				r, err := t.Apply(res.Datapath)
				apply += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				writes = r.Writes
				start = time.Now()
				again, err := nft.New(nft.Config{NetNS: int(ns)}).Apply(Compile(in).Datapath)
				restart += time.Since(start)
				if err != nil || again.Writes != 0 {
					b.Fatalf("restart: %d writes, %v", again.Writes, err)
				}
			}
			n := float64(b.N)
			b.ReportMetric(compile.Seconds()*1000/n, "compile-ms")
			b.ReportMetric(apply.Seconds()*1000/n, "apply-ms")
			b.ReportMetric(restart.Seconds()*1000/n, "restart-ms")
			b.ReportMetric(float64(writes), "messages")
		})
	}
}

// BenchmarkChangeKernel: BenchmarkPodChangeApplied's changes, each
// compiled by a warm Compiler and written into the real kernel (a
// namespace's nftables holding the 1k policies × 10k pods table).
func BenchmarkChangeKernel(b *testing.B) {
	netnstest.RequireRoot(b, "programs nftables in a network namespace of its own")
	for _, c := range appliedChanges {
		b.Run(c.name, func(b *testing.B) {
			t := nft.New(nft.Config{NetNS: int(netnstest.New(b))})
			defer func() { _ = t.Close() }()
			benchApplied(b, c, t, 200)
		})
	}
}
