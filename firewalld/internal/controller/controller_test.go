package controller

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/testutil"
	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

// Address plan: node-0 with pod CIDR 198.18.128.0/24; another node's pods
// in 198.18.129.0/24; the world at 198.18.0.1.

// fakeTable records what it is given; fail makes Apply fail.
type fakeTable struct {
	applied     []*model.Datapath
	invalidated int
	deltas      int
	dropReads   int
	fail        error
	drops       Drops
}

func (f *fakeTable) Apply(d *model.Datapath) (int, error) {
	if f.fail != nil {
		return 0, f.fail
	}
	f.applied = append(f.applied, d)
	return 1, nil
}
func (f *fakeTable) ApplyDelta(d *model.Datapath, delta *model.Delta) (int, error) {
	if f.fail != nil {
		return 0, f.fail
	}
	if len(f.applied) == 0 {
		return 0, errors.New("a delta with nothing applied before")
	}
	next := f.last().Clone()
	delta.ApplyTo(next)
	f.applied = append(f.applied, next)
	f.deltas++
	return delta.Len(), nil
}
func (f *fakeTable) Invalidate() { f.invalidated++ }
func (f *fakeTable) Drops() (Drops, error) {
	f.dropReads++
	return f.drops, nil
}
func (f *fakeTable) last() *model.Datapath { return f.applied[len(f.applied)-1] }

type harness struct {
	t      *testing.T
	client *fake.Clientset
	c      *Controller
	table  *fakeTable
	pub    *coord.Publisher
	reg    *prometheus.Registry
	events *record.FakeRecorder
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	h := &harness{t: t, table: &fakeTable{}, reg: prometheus.NewRegistry(), events: record.NewFakeRecorder(100)}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-0"}, Spec: corev1.NodeSpec{PodCIDRs: []string{"198.18.128.0/24"}}}
	h.client = fake.NewClientset(append([]runtime.Object{node}, objs...)...)
	log := zap.NewNop()
	h.pub = coord.NewPublisher(log, "firewalld", "test")
	deps := daemon.Deps{Log: log, Config: config.Common{NodeName: "node-0"}, Publisher: h.pub,
		Trigger: func() {}, Metrics: h.reg, Healthy: func() bool { return true }}
	h.c = New(deps, h.client, h.table, nil, h.events)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := h.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

func pod(ns, name, node, ip string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:   corev1.PodSpec{NodeName: node},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIPs: []corev1.PodIP{{IP: ip}}}}
}

func denyAll(ns string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
}

func (h *harness) sync(full bool) error {
	h.t.Helper()
	return h.c.Sync(context.Background(), full)
}

var (
	podA   = netip.MustParseAddr("198.18.128.10")
	podB   = netip.MustParseAddr("198.18.129.10")
	world  = netip.MustParseAddr("198.18.0.1")
	podNew = netip.MustParseAddr("198.18.128.11")
)

func TestSyncEnforcesAndPublishes(t *testing.T) {
	h := newHarness(t,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x"}},
		pod("x", "a", "node-0", podA.String(), map[string]string{"app": "a"}),
		pod("x", "b", "node-1", podB.String(), map[string]string{"app": "b"}),
		denyAll("x"))
	if err := h.sync(true); err != nil {
		t.Fatal(err)
	}
	dp := h.table.last()
	if v := dp.Judge(world, podA, model.ProtoTCP, 80); v != model.DeniedIngress {
		t.Errorf("world -> x/a: %v, want denied by the policy", v)
	}
	if v := dp.Judge(podA, world, model.ProtoTCP, 80); v != model.Allowed {
		t.Errorf("x/a -> world: %v, want allowed", v)
	}
	if v := dp.Judge(world, podNew, model.ProtoTCP, 80); v != model.DeniedPending {
		t.Errorf("an unknown address of the node's pod CIDR: %v, want pending", v)
	}
	ps := h.pub.Facts().PolicyState
	if ps == nil || !ps.InForce || ps.AppliedGeneration != 1 || ps.Policies != 1 || ps.SelectedPods != 1 {
		t.Errorf("policy state: %v", ps)
	}
	if h.table.invalidated != 1 {
		t.Errorf("a full sync re-reads the kernel: %d invalidations", h.table.invalidated)
	}
	counts := h.c.Counts()
	if counts["policies"] != 1 || counts["selectedPods"] != 1 || counts["pods"] != 2 || counts["applied"] != 1 {
		t.Errorf("counts: %v", counts)
	}

	// A new pod appears in the informer: the next sync knows it.
	created := pod("x", "new", "node-0", podNew.String(), map[string]string{"app": "new"})
	if _, err := h.client.CoreV1().Pods("x").Create(context.Background(), created, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the pod in the informer", nil, func() bool {
		_, err := h.c.pods.Pods("x").Get("new")
		return err == nil
	})
	reads := h.table.dropReads
	if err := h.sync(false); err != nil {
		t.Fatal(err)
	}
	if h.table.dropReads != reads {
		t.Error("a sync that changed no chain read the drop counters (a dump per chain)")
	}
	if v := h.table.last().Judge(world, podNew, model.ProtoTCP, 80); v != model.DeniedIngress {
		t.Errorf("the new pod: %v, want denied by the namespace's policy", v)
	}
	if h.table.deltas != 1 {
		t.Errorf("a partial sync wrote %d deltas, want 1 (the new pod's elements only)", h.table.deltas)
	}
	if h.table.invalidated != 1 {
		t.Error("a partial sync re-read the kernel")
	}
}

func TestFailedApplyKeepsStateAndRereads(t *testing.T) {
	h := newHarness(t, pod("x", "a", "node-0", podA.String(), nil), denyAll("x"))
	h.table.fail = errors.New("kernel says no")
	if err := h.sync(false); err == nil || !strings.Contains(err.Error(), "kernel says no") {
		t.Fatalf("sync: %v", err)
	}
	if ps := h.pub.Facts().PolicyState; ps != nil && ps.InForce {
		t.Error("policies reported in force before any apply succeeded")
	}
	h.table.fail = nil
	if err := h.sync(false); err != nil {
		t.Fatal(err)
	}
	if h.table.invalidated != 2 {
		t.Errorf("after a failed apply the next one must re-read the kernel: %d invalidations", h.table.invalidated)
	}
	if ps := h.pub.Facts().PolicyState; !ps.InForce || ps.AppliedGeneration != 1 {
		t.Errorf("policy state: %v", ps)
	}
}

func TestProblemsBecomeEvents(t *testing.T) {
	bad := denyAll("x")
	bad.Name = "bad-cidr"
	bad.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "198.18.0.0/99"}}}}}
	h := newHarness(t, pod("x", "a", "node-0", podA.String(), nil), bad)
	if err := h.sync(true); err != nil {
		t.Fatal(err)
	}
	if err := h.sync(false); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-h.events.Events:
		if !strings.Contains(e, "InvalidPeer") {
			t.Errorf("event: %q", e)
		}
	default:
		t.Fatal("no event for the invalid CIDR")
	}
	select {
	case e := <-h.events.Events:
		t.Errorf("the problem was reported twice: %q", e)
	default:
	}
	if v := h.table.last().Judge(world, podA, model.ProtoTCP, 80); v != model.DeniedIngress {
		t.Errorf("the bad policy opened x/a: %v", v)
	}
	n, err := promtest.GatherAndCount(h.reg, "firewalld_invalid_objects_total")
	if err != nil || n != 1 {
		t.Errorf("firewalld_invalid_objects_total series: %d, %v", n, err)
	}
}

func TestDropMetricsOnlyGrow(t *testing.T) {
	h := newHarness(t, pod("x", "a", "node-0", podA.String(), nil), denyAll("x"))
	if err := h.sync(true); err != nil {
		t.Fatal(err)
	}
	var key GroupKey
	for _, g := range h.table.last().IngressGroup {
		key = GroupKey{model.Ingress, g}
	}
	read := func() float64 {
		t.Helper()
		mfs, err := h.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "firewalld_policy_drops_total" {
				for _, m := range mf.GetMetric() {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	h.table.drops = Drops{Groups: map[GroupKey]uint64{key: 5}, Pending: 2}
	if got := read(); got != 5 {
		t.Fatalf("drops: %v, want 5", got)
	}
	h.table.drops.Groups[key] = 7
	if got := read(); got != 7 {
		t.Fatalf("drops: %v, want 7", got)
	}
	// The group's chain was made anew (counter restarted at 1): the total
	// keeps growing.
	h.table.drops.Groups[key] = 1
	if got := read(); got != 8 {
		t.Fatalf("drops after a counter reset: %v, want 8", got)
	}
}

func TestKernelSettingsFailureStillApplies(t *testing.T) {
	h := newHarness(t, pod("x", "a", "node-0", podA.String(), nil), denyAll("x"))
	prepErr := errors.New("no br_netfilter")
	calls := 0
	h.c.prepare = func() error {
		calls++
		return prepErr
	}
	err := h.sync(true)
	if !errors.Is(err, prepErr) {
		t.Fatalf("sync: %v, want the kernel settings' error", err)
	}
	if len(h.table.applied) != 1 {
		t.Fatal("the table was not applied because the kernel settings failed: policies must be enforced wherever they can")
	}
	if v := h.table.last().Judge(world, podA, model.ProtoTCP, 80); v != model.DeniedIngress {
		t.Errorf("world -> x/a: %v", v)
	}
	// A partial sync retries the settings until they take.
	prepErr = nil
	if err := h.sync(false); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("the kernel settings ran %d times, want a retry on the next sync", calls)
	}
	if err := h.sync(false); err != nil || calls != 2 {
		t.Errorf("the settings ran again after they took: %d calls, %v", calls, err)
	}
}
