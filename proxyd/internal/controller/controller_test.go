package controller

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/testutil"
	"github.com/nodenet/nodenet/proxyd/internal/conntrack"
	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/nft"
	"github.com/nodenet/nodenet/proxyd/internal/reconcile"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// Address plan: node-0 198.18.0.10 with pod CIDR 198.18.128.0/24, another
// node's pods in 198.18.129.0/24, ClusterIPs 198.19.0.0/16.

type harness struct {
	t      *testing.T
	client *fake.Clientset
	c      *Controller
	ipvs   *ipvs.Fake
	vips   *vip.Fake
	table  *nft.Fake
	ct     *conntrack.Fake
	events *record.FakeRecorder
	pub    *coord.Publisher
	reg    *prometheus.Registry
}

func newHarness(t *testing.T, objs ...any) *harness {
	h := &harness{t: t, ipvs: ipvs.NewFake(), vips: vip.NewFake(), table: nft.NewFake(), ct: &conntrack.Fake{},
		events: record.NewFakeRecorder(100), reg: prometheus.NewRegistry()}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-0", Labels: map[string]string{corev1.LabelTopologyZone: "z1"}},
		Spec:   corev1.NodeSpec{PodCIDRs: []string{"198.18.128.0/24"}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.18.0.10"}}}}
	h.client = fake.NewClientset(node)
	log := zap.NewNop()
	h.pub = coord.NewPublisher(log, "proxyd", "test")
	deps := daemon.Deps{Log: log, Config: config.Common{NodeName: "node-0"}, Publisher: h.pub,
		Trigger: func() {}, Metrics: h.reg, Healthy: func() bool { return true }}
	rec := reconcile.New(reconcile.Config{}, h.ipvs, h.vips)
	h.c = New(deps, DefaultConfig(), h.client, Kernel{Reconciler: rec, Masquerade: fakeMasq{h.table}, Conntrack: h.ct}, h.events)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := h.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

// create adds an object through the API and waits until the controller's
// informer has it.
func (h *harness) create(obj any) {
	h.t.Helper()
	ctx := context.Background()
	switch o := obj.(type) {
	case *corev1.Service:
		if _, err := h.client.CoreV1().Services(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err != nil {
			h.t.Fatal(err)
		}
		testutil.Eventually(h.t, 10*time.Second, "service in the informer", nil, func() bool {
			_, err := h.c.svcs.Services(o.Namespace).Get(o.Name)
			return err == nil
		})
	case *discoveryv1.EndpointSlice:
		if _, err := h.client.DiscoveryV1().EndpointSlices(o.Namespace).Create(ctx, o, metav1.CreateOptions{}); err != nil {
			h.t.Fatal(err)
		}
		testutil.Eventually(h.t, 10*time.Second, "slice in the informer", nil, func() bool {
			_, ok, _ := h.c.sliceIndexer.GetByKey(o.Namespace + "/" + o.Name)
			return ok
		})
	}
}

func (h *harness) sync(full bool) {
	h.t.Helper()
	if err := h.c.Sync(context.Background(), full); err != nil {
		h.t.Fatal(err)
	}
}

func webService(ip string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}
}

func webSlice(name string, eps ...string) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}}}
	for _, e := range eps {
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{e}, NodeName: ptr.To("node-0")})
	}
	return sl
}

func TestServiceToKernelAndFacts(t *testing.T) {
	h := newHarness(t)
	h.sync(true)
	h.create(webService("198.19.0.10"))
	h.create(webSlice("web-1", "198.18.128.5", "198.18.128.6"))
	h.sync(false)

	entries, _ := h.ipvs.List()
	if len(entries) != 1 || entries[0].Addr != netip.MustParseAddr("198.19.0.10") || len(entries[0].Dests) != 2 {
		t.Fatalf("kernel %+v", entries)
	}
	if routes, _ := h.vips.List(); len(routes) != 1 {
		t.Fatalf("routes %v", routes)
	}
	f := h.pub.Facts()
	v := f.VIPs[coord.VIPKey{IP: "198.19.0.10", Port: 80, Protocol: nodev1.Protocol_PROTOCOL_TCP}]
	if v == nil || v.GetService() != "shop/web" || !v.GetLocalEndpoints() || v.GetKind() != nodev1.VIPKind_VIP_KIND_CLUSTER_IP {
		t.Fatalf("facts %+v", f.VIPs)
	}
	if got := h.c.Counts(); got["virtualServices"] != 1 || got["realServers"] != 2 || got["vips"] != 1 {
		t.Fatalf("counts %v", got)
	}
	if d := h.table.Dump(); !strings.Contains(strings.Join(d.Sets["vips4"], " "), "198.19.0.10") {
		t.Fatalf("masquerade table has no VIP: %v", d.Sets)
	}

	// One endpoint leaves: one kernel change, no re-listing.
	h.ipvs.Reset()
	sl := webSlice("web-1", "198.18.128.5")
	sl.ResourceVersion = "2"
	if _, err := h.client.DiscoveryV1().EndpointSlices("shop").Update(context.Background(), sl, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "slice update in the informer", nil, func() bool {
		o, _, _ := h.c.sliceIndexer.GetByKey("shop/web-1")
		return o != nil && len(o.(*discoveryv1.EndpointSlice).Endpoints) == 1
	})
	h.sync(false)
	if n := h.ipvs.Count(ipvs.OpList); n != 0 {
		t.Fatalf("a partial sync listed IPVS %d times", n)
	}
	if n := h.ipvs.Count(ipvs.OpDeleteDest); n != 1 {
		t.Fatalf("ops %v, want the idle endpoint deleted once", h.ipvs.Counts())
	}

	// The Service goes: virtual service, route, facts.
	if err := h.client.CoreV1().Services("shop").Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "service deletion in the informer", nil, func() bool {
		_, err := h.c.svcs.Services("shop").Get("web")
		return err != nil
	})
	h.sync(false)
	if entries, _ := h.ipvs.List(); len(entries) != 0 {
		t.Fatalf("kernel after deletion %+v", entries)
	}
	if routes, _ := h.vips.List(); len(routes) != 0 {
		t.Fatalf("routes after deletion %v", routes)
	}
	if f := h.pub.Facts(); len(f.VIPs) != 0 {
		t.Fatalf("facts after deletion %+v", f.VIPs)
	}
}

func TestBadInputIsReportedOnceAndSkipped(t *testing.T) {
	h := newHarness(t)
	bad := webService("198.19.0.10")
	bad.Annotations = map[string]string{"nodenet.io/ipvs-scheduler": "fastest"}
	bad.Spec.ExternalIPs = []string{"not-an-ip"}
	h.create(bad)
	other := webService("198.19.0.11")
	other.Name = "api"
	h.create(other)
	h.sync(true)
	h.sync(true)

	entries, _ := h.ipvs.List()
	if len(entries) != 2 || entries[0].Scheduler != "rr" {
		t.Fatalf("kernel %+v: both services programmed, the bad scheduler replaced by rr", entries)
	}
	var events []string
	for len(h.events.Events) > 0 {
		events = append(events, <-h.events.Events)
	}
	if len(events) != 2 || !strings.Contains(strings.Join(events, "\n"), "InvalidScheduler") || !strings.Contains(strings.Join(events, "\n"), "InvalidIP") {
		t.Fatalf("events %q, want one InvalidScheduler and one InvalidIP", events)
	}
	if n := counterValue(t, h.reg, "proxyd_invalid_objects_total", "Service", "InvalidIP"); n != 1 {
		t.Fatalf("invalid_objects_total{InvalidIP} = %v", n)
	}
}

func TestServicesOfAnotherProxyAreIgnored(t *testing.T) {
	h := newHarness(t)
	svc := webService("198.19.0.10")
	svc.Labels = map[string]string{serviceProxyNameLabel: "other-proxy"}
	if _, err := h.client.CoreV1().Services("shop").Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.create(func() *corev1.Service { s := webService("198.19.0.11"); s.Name = "mine"; return s }())
	h.sync(true)
	entries, _ := h.ipvs.List()
	if len(entries) != 1 || entries[0].Addr != netip.MustParseAddr("198.19.0.11") {
		t.Fatalf("kernel %+v", entries)
	}
}

// counterValue reads one series of a counter vector with labels kind, reason.
func counterValue(t *testing.T, reg *prometheus.Registry, name, kind, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["kind"] == kind && l["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// orderMasq records, at each apply, whether IPVS already served the VIP.
type orderMasq struct {
	fakeMasq
	ipvs *ipvs.Fake
	vip  netip.Addr
	// seen is what IPVS held the first time the table got the VIP: it
	// must not serve it yet.
	seen *[]bool
}

func (m orderMasq) Apply(st model.State, pod []netip.Prefix, full bool) (int, error) {
	for _, vs := range st.Services {
		if vs.Addr == m.vip && len(*m.seen) == 0 {
			entries, _ := m.ipvs.List()
			served := slices.ContainsFunc(entries, func(e ipvs.Entry) bool { return e.Addr == m.vip })
			*m.seen = append(*m.seen, served)
		}
	}
	return m.fakeMasq.Apply(st, pod, full)
}

// A new VIP is in the masquerade table before IPVS serves it (hairpin
// from its first packet); a VIP that goes leaves the table after.
func TestMasqueradeGetsNewVIPsBeforeIPVS(t *testing.T) {
	h := newHarness(t)
	var seen []bool
	vipAddr := netip.MustParseAddr("198.19.0.10")
	h.c.kernel.Masquerade = orderMasq{fakeMasq{h.table}, h.ipvs, vipAddr, &seen}
	h.sync(true)
	h.create(webService("198.19.0.10"))
	h.create(webSlice("web-1", "198.18.128.5"))
	h.sync(false)
	if len(seen) != 1 || seen[0] {
		t.Fatalf("IPVS served the VIP before the masquerade table had it (%v)", seen)
	}
	if entries, _ := h.ipvs.List(); len(entries) != 1 {
		t.Fatalf("IPVS %+v", entries)
	}
	if d := h.table.Dump(); !strings.Contains(strings.Join(d.Sets["vips4"], " "), "198.19.0.10") {
		t.Fatalf("masquerade table has no VIP: %v", d.Sets)
	}
}
