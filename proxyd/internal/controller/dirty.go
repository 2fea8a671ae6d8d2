package controller

import (
	"sync"

	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// dirtySet records which Services changed since the last sync. Informer
// callbacks only record (STYLE practice 1); the sync recomputes those
// Services alone.
type dirtySet struct {
	mu   sync.Mutex
	keys map[types.NamespacedName]bool
	all  bool
}

func newDirtySet() *dirtySet { return &dirtySet{keys: map[types.NamespacedName]bool{}, all: true} }

func (d *dirtySet) add(k types.NamespacedName) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys[k] = true
}

// take returns what changed and starts a new record.
func (d *dirtySet) take() (keys map[types.NamespacedName]bool, all bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	keys, all = d.keys, d.all
	d.keys, d.all = map[types.NamespacedName]bool{}, false
	return keys, all
}

// putBack re-records keys a failed sync could not apply.
func (d *dirtySet) putBack(keys map[types.NamespacedName]bool, all bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k := range keys {
		d.keys[k] = true
	}
	d.all = d.all || all
}

// objectKey is the namespace/name of an informer object, tombstones too.
func objectKey(obj any) (types.NamespacedName, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return types.NamespacedName{}, false
	}
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	return types.NamespacedName{Namespace: ns, Name: name}, err == nil
}

// sliceService is the Service an EndpointSlice belongs to.
func sliceService(obj any) (types.NamespacedName, bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	sl, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok || sl.Labels[discoveryv1.LabelServiceName] == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: sl.Namespace, Name: sl.Labels[discoveryv1.LabelServiceName]}, true
}

// handler marks what an event touches as dirty, records the event's version
// (kube.Versions), then calls trigger. The record comes after the mark: a
// sync that snapshots the versions with this event in them must also find
// its Service dirty, or a partial sync would claim an event it skipped.
func handler(mark, record func(obj any), trigger func()) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { mark(obj); record(obj); trigger() },
		UpdateFunc: func(oldObj, newObj any) {
			if o, n := oldObj.(interface{ GetResourceVersion() string }), newObj.(interface{ GetResourceVersion() string }); o != nil && n != nil &&
				o.GetResourceVersion() != "" && o.GetResourceVersion() == n.GetResourceVersion() {
				return // a resync: nothing changed
			}
			mark(oldObj)
			mark(newObj)
			record(newObj)
			trigger()
		},
		DeleteFunc: func(obj any) { mark(obj); record(obj); trigger() },
	}
}
