//go:build kernel

package bgp

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// benchRoutes is how many routes BIRD announces. They are /29s of
// 198.19.0.0/16: 5,000 /24s do not fit in 198.18.0.0/15, the only range
// tests may use, and a prefix's length costs BGP nothing.
const benchRoutes = 5000

func benchPrefixes() []string {
	out := make([]string, benchRoutes)
	for i := range out {
		a := netip.AddrFrom4([4]byte{198, 19, byte(i * 8 / 256), byte(i * 8 % 256)})
		out[i] = netip.PrefixFrom(a, 29).String()
	}
	return out
}

// learned counts the speaker's learned paths without copying them (the
// waits below poll on every change, 5,000 times while the routes come in).
func learned(s *Speaker) int {
	s.table.mu.Lock()
	defer s.table.mu.Unlock()
	return len(s.table.paths)
}

// BenchmarkKernelBIRD5k measures a BIRD announcing 5,000 routes to a fresh
// speaker: BIRD's start to the session being up (mostly connect timers),
// the session being up to the first, 95% and all of the routes in Paths,
// the heap the speaker holds with them, the cost of a Paths call, and the
// withdrawal of them all (BIRD's static protocol disabled) until Paths is
// empty. Numbers are reported, never asserted.
//
// BIRD 2.0.12 sends the last batch of its table about a second after the
// others unless something else wakes its event loop (a birdc command
// does): the gap between 95% and all is BIRD's.
func BenchmarkKernelBIRD5k(b *testing.B) {
	requireNetns(b)
	requireBIRD(b)
	const us, peer = "198.18.5.1", "198.18.5.2"
	ns := birdNetns(b, "nnbench0", us+"/24", peer+"/24")
	routes := benchPrefixes()
	var up, first, most, all, withdraw, heap, pathsBytes, pathsCold, pathsWarm float64
	for range b.N {
		s := New(zaptest.NewLogger(b, zaptest.Level(zap.WarnLevel)))
		if err := s.Start(b.Context(), globalAt(us)); err != nil {
			b.Fatal(err)
		}
		setPeers(b, s, model.Peer{Address: netip.MustParseAddr(peer), ASN: 65005, Kind: model.ExternalPeer})
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)

		start := time.Now()
		bd := startBIRD(b, ns, birdConfig{RouterID: peer, Local: peer, LocalAS: 65005, Neighbor: us, NeighborAS: testASN,
			NeighborPort: 179, Passive: true, Routes: routes})
		waitUntil(b, s, sessionTimeout, "session up", established(b, s, false, peer))
		upAt := time.Now()
		var firstAt, mostAt time.Time
		waitUntil(b, s, time.Minute, "all routes learned", func() (bool, string) {
			n := learned(s)
			if n > 0 && firstAt.IsZero() {
				firstAt = time.Now()
			}
			if n >= benchRoutes*95/100 && mostAt.IsZero() {
				mostAt = time.Now()
			}
			return n == benchRoutes, fmt.Sprintf("%d learned", n)
		})
		allAt := time.Now()

		runtime.GC()
		runtime.ReadMemStats(&m1)
		heap += float64(int64(m1.HeapAlloc) - int64(m0.HeapAlloc))
		// The first Paths after a change sorts; the next ones only copy.
		t0 := time.Now()
		if got := len(s.Paths()); got != benchRoutes {
			b.Fatalf("%d paths", got)
		}
		pathsCold += float64(time.Since(t0).Microseconds())
		runtime.ReadMemStats(&m1)
		before := m1.TotalAlloc
		t0 = time.Now()
		_ = s.Paths()
		pathsWarm += float64(time.Since(t0).Microseconds())
		runtime.ReadMemStats(&m1)
		pathsBytes += float64(m1.TotalAlloc - before)

		bd.birdc(b, "disable", "announced")
		w0 := time.Now()
		waitUntil(b, s, time.Minute, "all routes withdrawn", func() (bool, string) {
			n := learned(s)
			return n == 0, fmt.Sprintf("%d learned", n)
		})
		withdraw += float64(time.Since(w0).Milliseconds())
		up += float64(upAt.Sub(start).Milliseconds())
		first += float64(firstAt.Sub(upAt).Milliseconds())
		most += float64(mostAt.Sub(upAt).Milliseconds())
		all += float64(allAt.Sub(upAt).Milliseconds())

		_ = s.Stop()
		bd.birdc(b, "down") // the next BIRD binds the same address
		<-bd.done
	}
	n := float64(b.N)
	b.ReportMetric(up/n, "ms-bird-start-to-up")
	b.ReportMetric(first/n, "ms-up-to-first-path")
	b.ReportMetric(most/n, "ms-up-to-95%-paths")
	b.ReportMetric(all/n, "ms-up-to-all-paths")
	b.ReportMetric(withdraw/n, "ms-withdraw-5k")
	b.ReportMetric(heap/n/(1<<20), "MiB-heap-with-5k")
	b.ReportMetric(pathsCold/n, "µs-first-Paths")
	b.ReportMetric(pathsWarm/n, "µs-next-Paths")
	b.ReportMetric(pathsBytes/n, "B/Paths")
}
