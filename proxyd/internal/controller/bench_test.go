package controller

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/nft"
	"github.com/nodenet/nodenet/proxyd/internal/reconcile"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
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

// path is a controller over the kernel fakes whose informer caches the
// benchmark fills by hand (no API server: the informers never run).
type path struct {
	c     *Controller
	ipvs  ipvs.Interface
	vips  *vip.Fake
	table *nft.Fake
}

func newPath(b *testing.B, cl *cluster, ipvsF ipvs.Interface, vipsF *vip.Fake, table *nft.Fake) *path {
	p := &path{ipvs: ipvsF, vips: vipsF, table: table}
	log := zap.NewNop()
	deps := daemon.Deps{Log: log, Config: config.Common{NodeName: "node-0"}, Publisher: coord.NewPublisher(log, "proxyd", "bench"),
		Trigger: func() {}, Healthy: func() bool { return true }}
	rec := reconcile.New(reconcile.Config{}, ipvsF, vipsF)
	p.c = New(deps, DefaultConfig(), fake.NewClientset(), Kernel{Reconciler: rec, Masquerade: fakeMasq{table}}, nil)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-0", ResourceVersion: "1"},
		Spec:   corev1.NodeSpec{PodCIDRs: []string{"198.18.128.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.18.0.10"}}}}
	must(b, p.c.nodeStore.Add(node))
	for _, svc := range cl.svcs {
		must(b, p.c.svcStore.Add(svc))
	}
	for _, sls := range cl.slices {
		for _, sl := range sls {
			must(b, p.c.sliceIndexer.Add(sl))
		}
	}
	return p
}

func must(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

type fakeMasq struct{ t *nft.Fake }

func (m fakeMasq) Apply(st model.State, pod []netip.Prefix, full bool) (int, error) {
	if full {
		m.t.Invalidate()
	}
	res, err := m.t.Apply(nft.Build(st, pod))
	return res.Writes, err
}

func (p *path) sync(b *testing.B, full bool) {
	if err := p.c.Sync(context.Background(), full); err != nil {
		b.Fatal(err)
	}
}

func (p *path) kernelOps() int {
	switch k := p.ipvs.(type) {
	case *ipvs.Fake:
		return k.WriteCount() + p.vips.RouteWrites()
	case *nullIPVS:
		return k.writes + p.vips.RouteWrites()
	}
	return -1
}

// BenchmarkColdSync: 10k Services × 10 endpoints from nothing. Reports the
// kernel writes per object (a virtual service, a real server, a route).
// kernel=fake uses the semantic fakes (which cost CPU of their own);
// kernel=null one that only counts, which leaves proxyd's own CPU time.
func BenchmarkColdSync(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		for _, kernel := range []string{"fake", "null"} {
			b.Run(fmt.Sprintf("services=%d/kernel=%s", n, kernel), func(b *testing.B) {
				c := makeCluster(n, 10)
				var ops int
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					var ipvsK ipvs.Interface = ipvs.NewFake()
					if kernel == "null" {
						ipvsK = &nullIPVS{}
					}
					p := newPath(b, c, ipvsK, vip.NewFake(), nft.NewFake())
					b.StartTimer()
					p.sync(b, true)
					ops = p.kernelOps()
				}
				objects := n * (1 + 10 + 1)
				b.ReportMetric(float64(ops), "kernel-writes")
				b.ReportMetric(float64(ops)/float64(objects), "writes/object")
			})
		}
	}
}

// nullIPVS is an empty IPVS that only counts writes.
type nullIPVS struct{ writes int }

func (n *nullIPVS) List() ([]ipvs.Entry, error)                 { return nil, nil }
func (n *nullIPVS) ListDests(model.VSKey) ([]ipvs.Dest, error)  { return nil, nil }
func (n *nullIPVS) CreateService(ipvs.Service) error            { n.writes++; return nil }
func (n *nullIPVS) UpdateService(ipvs.Service) error            { n.writes++; return nil }
func (n *nullIPVS) DeleteService(model.VSKey) error             { n.writes++; return nil }
func (n *nullIPVS) CreateDest(model.VSKey, ipvs.Dest) error     { n.writes++; return nil }
func (n *nullIPVS) UpdateDest(model.VSKey, ipvs.Dest) error     { n.writes++; return nil }
func (n *nullIPVS) DeleteDest(model.VSKey, model.DestKey) error { n.writes++; return nil }

// BenchmarkRestartUnchanged: a new proxyd over a kernel that already holds
// the state. Reports the kernel writes (want 0).
func BenchmarkRestartUnchanged(b *testing.B) {
	c := makeCluster(10000, 10)
	first := newPath(b, c, ipvs.NewFake(), vip.NewFake(), nft.NewFake())
	first.sync(b, true)
	var ops int
	for b.Loop() {
		b.StopTimer()
		first.ipvs.(*ipvs.Fake).Reset()
		first.vips.Reset()
		p := newPath(b, c, first.ipvs, first.vips, first.table)
		b.StartTimer()
		p.sync(b, true)
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
			p := newPath(b, c, ipvs.NewFake(), vip.NewFake(), nft.NewFake())
			p.sync(b, true)
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
				must(b, p.c.sliceIndexer.Update(sl))
				p.c.dirty.add(types.NamespacedName{Namespace: "bench", Name: svc.Name})
				start := time.Now()
				p.sync(b, false)
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
		p := newPath(b, c, ipvs.NewFake(), vip.NewFake(), nft.NewFake())
		p.sync(b, true)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/10000, "bytes/service")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/100000, "bytes/endpoint")
		runtime.KeepAlive(p)
	}
}
