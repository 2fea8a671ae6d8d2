//go:build vm

package ipvs

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// destsPerService is the real servers of every benchmarked service.
const destsPerService = 10

// BenchmarkCreateServices programs n virtual services with 10 real servers
// each into a fresh namespace's IPVS through Kernel, one request per
// write (as the reconciler does at a cold start), then lists them all and
// deletes them. It reports rates, never asserts them:
//
//	go test -tags vm -exec $PWD/_output/bin/vmexec -run '^$' \
//	    -bench CreateServices -benchtime 1x ./proxyd/internal/ipvs/
//
// Under the VM's TCG emulation the numbers are lower bounds of what a real
// node does.
func BenchmarkCreateServices(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			benchCreate(b, n)
		})
	}
}

func benchCreate(b *testing.B, n int) {
	var create, list, del time.Duration
	for range b.N {
		b.StopTimer()
		k, _ := newKernel(b)
		b.StartTimer()

		start := time.Now()
		for i := range n {
			vs := benchVS(i)
			if err := k.CreateService(Service{VSKey: vs, Scheduler: "rr"}); err != nil {
				b.Fatal(err)
			}
			for j := range destsPerService {
				if err := k.CreateDest(vs, Dest{DestKey: benchDest(i, j), Weight: 1}); err != nil {
					b.Fatal(err)
				}
			}
		}
		create += time.Since(start)

		start = time.Now()
		entries, err := k.List()
		list += time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		if len(entries) != n || len(entries[n-1].Dests) != destsPerService {
			b.Fatalf("listed %d services, want %d with %d real servers each", len(entries), n, destsPerService)
		}

		start = time.Now()
		for i := range n {
			if err := k.DeleteService(benchVS(i)); err != nil {
				b.Fatal(err)
			}
		}
		del += time.Since(start)
	}
	runs := float64(b.N)
	writes := float64(n * (1 + destsPerService))
	b.ReportMetric(writes*runs/create.Seconds(), "writes/s")
	b.ReportMetric(float64(n)*runs/create.Seconds(), "services/s")
	b.ReportMetric(list.Seconds()*1000/runs, "list-ms")
	b.ReportMetric(float64(n)*runs/del.Seconds(), "deletes/s")
}

// benchVS is virtual service i: 198.19.x.y:80/TCP.
func benchVS(i int) model.VSKey {
	return model.VSKey{Addr: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), Port: 80, Proto: model.TCP}
}

// benchDest is real server j of service i, on 198.18.128.0/17.
func benchDest(i, j int) model.DestKey {
	return model.DestKey{Addr: netip.AddrFrom4([4]byte{198, 18, 128 + byte(j), byte(i)}), Port: uint16(8000 + i>>8)}
}
