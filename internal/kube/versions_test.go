package kube

import (
	"reflect"
	"strconv"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func svc(rv string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", ResourceVersion: rv}}
}

func TestVersionsComparesNumerically(t *testing.T) {
	v := NewVersions()
	// "999" > "1000" as strings: the tracker must not keep it.
	for _, rv := range []string{"999", "1000", "12", "not-a-number", "", "1000"} {
		v.Observe("services", svc(rv))
	}
	v.Observe("endpointslices", &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "7"}})
	want := []ObjectVersion{
		{Kind: "endpointslices", ResourceVersion: "7", Generation: 1},
		{Kind: "services", ResourceVersion: "1000", Generation: 6},
	}
	if got := v.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot %+v, want %+v", got, want)
	}
}

func TestVersionsUnparsableOnly(t *testing.T) {
	v := NewVersions()
	v.Observe("services", svc("abc"))
	v.Observe("services", "not even an object")
	want := []ObjectVersion{{Kind: "services", Generation: 2}}
	if got := v.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot %+v, want %+v", got, want)
	}
}

func TestVersionsTombstone(t *testing.T) {
	v := NewVersions()
	v.Observe("services", svc("5"))
	// The tombstone holds the last state seen, at a higher version than
	// anything delivered here: that is not the deletion's version.
	v.Observe("", cache.DeletedFinalStateUnknown{Key: "ns/web", Obj: svc("50")})
	want := []ObjectVersion{{Kind: "services", ResourceVersion: "5", Generation: 2}}
	if got := v.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot %+v, want %+v", got, want)
	}
}

func TestVersionsSnapshotIsACopy(t *testing.T) {
	v := NewVersions()
	v.Observe("nodes", &corev1.Node{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "3"}})
	snap := v.Snapshot()
	v.Observe("nodes", &corev1.Node{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "4"}})
	if snap[0].ResourceVersion != "3" || snap[0].Generation != 1 {
		t.Fatalf("snapshot changed after the fact: %+v", snap)
	}
}

func TestVersionsNil(t *testing.T) {
	var v *Versions
	v.Observe("services", svc("1"))
	v.Recorder("services")(svc("2"))
	if got := v.Snapshot(); got != nil {
		t.Fatalf("nil tracker snapshot %+v", got)
	}
	h := OnChangeTracked(func() {}, nil, "services")
	h.OnAdd(svc("1"), false)
}

func TestVersionsConcurrent(t *testing.T) {
	v := NewVersions()
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				v.Observe("pods", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: strconv.Itoa(w*each + i + 1)}})
			}
		})
	}
	wg.Go(func() {
		for range each {
			_ = v.Snapshot()
		}
	})
	wg.Wait()
	want := []ObjectVersion{{Kind: "pods", ResourceVersion: strconv.Itoa(writers * each), Generation: writers * each}}
	if got := v.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot %+v, want %+v", got, want)
	}
}

func TestOnChangeTracked(t *testing.T) {
	v := NewVersions()
	var seen []ObjectVersion
	// The trigger must find the event recorded: a sync it starts takes its
	// snapshot first.
	h := OnChangeTracked(func() { seen = v.Snapshot() }, v, "")
	h.OnAdd(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "10"}}, false)
	if len(seen) != 1 || seen[0] != (ObjectVersion{Kind: "networkpolicies", ResourceVersion: "10", Generation: 1}) {
		t.Fatalf("at the trigger: %+v", seen)
	}
	pol := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "10"}}
	seen = nil
	h.OnUpdate(pol, pol) // a resync: neither recorded nor triggered
	if seen != nil {
		t.Fatal("a resync triggered")
	}
	h.OnUpdate(pol, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "11"}})
	h.OnDelete(&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "12"}})
	if want := (ObjectVersion{Kind: "networkpolicies", ResourceVersion: "12", Generation: 3}); len(seen) != 1 || seen[0] != want {
		t.Fatalf("after update and delete: %+v, want %+v", seen, want)
	}
}

func TestKindOf(t *testing.T) {
	for obj, want := range map[any]string{
		&corev1.Node{}:                                     "nodes",
		&corev1.Secret{}:                                   "secrets",
		&corev1.Namespace{}:                                "namespaces",
		&discoveryv1.EndpointSlice{}:                       "endpointslices",
		&networkingv1.NetworkPolicy{}:                      "networkpolicies",
		cache.DeletedFinalStateUnknown{}:                   "unknown",
		cache.DeletedFinalStateUnknown{Obj: &corev1.Pod{}}: "pods",
	} {
		if got := KindOf(obj); got != want {
			t.Errorf("KindOf(%T) = %q, want %q", obj, got, want)
		}
	}
}
