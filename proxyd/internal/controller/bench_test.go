package controller

import (
	"fmt"
	"net/netip"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nodenet/nodenet/proxyd/internal/desired"
	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/nft"
	"github.com/nodenet/nodenet/proxyd/internal/reconcile"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The benchmarks drive the sync path below the informers — per-Service
// cache, desired state, reconciler, nftables — against the in-memory
// kernel fakes, at cluster scale. They print numbers; nothing is asserted
// about time. Address plan: ClusterIPs 198.19.0.0/16, endpoints
// 198.18.128.0/17 (10 per Service), node 198.18.0.10.

type cluster struct {
	svcs   []*corev1.Service
	slices map[string][]*discoveryv1.EndpointSlice
}

func makeCluster(services, endpoints int) *cluster {
	c := &cluster{slices: map[string][]*discoveryv1.EndpointSlice{}}
	for i := range services {
		name := "svc-" + strconv.Itoa(i)
		ip := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		c.svcs = append(c.svcs, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: name, ResourceVersion: "1"},
			Spec: corev1.ServiceSpec{ClusterIP: ip.String(), ClusterIPs: []string{ip.String()},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
		})
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "bench", Name: name + "-abc", ResourceVersion: "1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for j := range endpoints {
			// 100k endpoints do not fit in the pod /17: Services share
			// backends, as pods backing several Services do.
			n := (i*endpoints + j) % 32768
			ep := netip.AddrFrom4([4]byte{198, 18, 128 + byte(n>>8), byte(n)})
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{ep.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
		}
		c.slices["bench/"+name] = []*discoveryv1.EndpointSlice{sl}
	}
	return c
}

func (c *cluster) slicesOf(ns, name string) []*discoveryv1.EndpointSlice { return c.slices[ns+"/"+name] }

// path is the sync path of a running proxyd.
type path struct {
	cache *resultCache
	ipvs  *ipvs.Fake
	vips  *vip.Fake
	table *nft.Fake
	rec   *reconcile.Reconciler
	node  desired.Node
}

func newPath() *path {
	p := &path{cache: newCache(), ipvs: ipvs.NewFake(), vips: vip.NewFake(), table: nft.NewFake(),
		node: desired.Node{Name: "node-0", IPs: []netip.Addr{netip.MustParseAddr("198.18.0.10")}}}
	p.rec = reconcile.New(reconcile.Config{}, p.ipvs, p.vips)
	return p
}

func (p *path) sync(b *testing.B, c *cluster, full bool) reconcile.Result {
	results := p.cache.results(c.svcs, c.slicesOf, 1, func(svc *corev1.Service, sl []*discoveryv1.EndpointSlice) desired.ServiceResult {
		return desired.ComputeService(svc, sl, p.node, desired.Config{})
	})
	st, _ := desired.Merge(results)
	res, err := p.rec.Sync(st, p.node.IPs, full)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.table.Apply(nft.Build(st, []netip.Prefix{netip.MustParsePrefix("198.18.128.0/24")})); err != nil {
		b.Fatal(err)
	}
	return res
}

func (p *path) kernelOps() int { return p.ipvs.WriteCount() + p.vips.RouteWrites() }

// BenchmarkColdSync: 10k Services × 10 endpoints from nothing. Reports the
// kernel writes per object (a virtual service, a real server, a route).
func BenchmarkColdSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			c := makeCluster(n, 10)
			var ops int
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				p := newPath()
				b.StartTimer()
				p.sync(b, c, true)
				ops = p.kernelOps()
			}
			objects := n * (1 + 10 + 1)
			b.ReportMetric(float64(ops), "kernel-writes")
			b.ReportMetric(float64(ops)/float64(objects), "writes/object")
		})
	}
}

// BenchmarkRestartUnchanged: a new proxyd over a kernel that already holds
// the state. Reports the kernel writes (want 0).
func BenchmarkRestartUnchanged(b *testing.B) {
	c := makeCluster(10000, 10)
	first := newPath()
	first.sync(b, c, true)
	var ops int
	for b.Loop() {
		b.StopTimer()
		first.ipvs.Reset()
		first.vips.Reset()
		p := &path{cache: newCache(), ipvs: first.ipvs, vips: first.vips, table: first.table, node: first.node}
		p.rec = reconcile.New(reconcile.Config{}, p.ipvs, p.vips)
		b.StartTimer()
		p.sync(b, c, true)
		ops = p.kernelOps()
	}
	b.ReportMetric(float64(ops), "kernel-writes")
}

// BenchmarkEndpointChange: one endpoint of one Service changes, at 100 and
// 10k Services; reports p50 and p99 of the whole sync.
func BenchmarkEndpointChange(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			c := makeCluster(n, 10)
			p := newPath()
			p.sync(b, c, true)
			var durs []time.Duration
			i := 0
			for b.Loop() {
				i++
				svc := c.svcs[i%n]
				key := "bench/" + svc.Name
				sl := c.slices[key][0].DeepCopy()
				sl.ResourceVersion = strconv.Itoa(i + 1)
				sl.Endpoints[0].Conditions.Ready = ptr.To(i%2 == 0)
				c.slices[key] = []*discoveryv1.EndpointSlice{sl}
				start := time.Now()
				p.sync(b, c, false)
				durs = append(durs, time.Since(start))
			}
			sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
			b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(durs[len(durs)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkCacheMemory: heap held per cached Service (10 endpoints each).
func BenchmarkCacheMemory(b *testing.B) {
	c := makeCluster(10000, 10)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p := newPath()
		p.sync(b, c, true)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/10000, "bytes/service")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/100000, "bytes/endpoint")
		runtime.KeepAlive(p)
	}
}
