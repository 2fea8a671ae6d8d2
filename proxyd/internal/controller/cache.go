package controller

import (
	"slices"
	"strings"

	"github.com/nodenet/nodenet/proxyd/internal/desired"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// byServiceIndex indexes EndpointSlices by "namespace/service-name", so a
// sync finds a Service's slices without scanning its namespace.
const byServiceIndex = "byService"

func sliceServiceKey(obj any) ([]string, error) {
	sl, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return nil, nil
	}
	name := sl.Labels[discoveryv1.LabelServiceName]
	if name == "" {
		return nil, nil
	}
	return []string{sl.Namespace + "/" + name}, nil
}

// resultCache keeps each Service's desired state until the Service, one of
// its slices or the node facts change: at thousands of Services a sync only
// recomputes what an event touched, and hands the reconciler the very same
// objects for the rest (which lets it skip them).
type resultCache struct {
	entries map[types.NamespacedName]*cacheEntry
}

type cacheEntry struct {
	svcVersion    string
	sliceVersions []string
	nodeGen       uint64
	result        desired.ServiceResult
	// svc and slices are what result was computed from (the informer's
	// objects, never modified): a trace explains result from them.
	svc    *corev1.Service
	slices []*discoveryv1.EndpointSlice
}

func newCache() *resultCache { return &resultCache{entries: map[types.NamespacedName]*cacheEntry{}} }

// result returns the Service's result, computing it only when the Service,
// its slices or the node facts changed since it was cached.
func (c *resultCache) result(svc *corev1.Service, sl []*discoveryv1.EndpointSlice, nodeGen uint64,
	compute func(*corev1.Service, []*discoveryv1.EndpointSlice) desired.ServiceResult) desired.ServiceResult {
	key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	versions := make([]string, len(sl))
	for j, s := range sl {
		versions[j] = s.Name + "@" + s.ResourceVersion
	}
	e := c.entries[key]
	if e == nil || e.nodeGen != nodeGen || e.svcVersion != svc.ResourceVersion || !slices.Equal(e.sliceVersions, versions) ||
		svc.ResourceVersion == "" {
		e = &cacheEntry{svcVersion: svc.ResourceVersion, sliceVersions: versions, nodeGen: nodeGen, result: compute(svc, sl), svc: svc, slices: sl}
		c.entries[key] = e
	}
	return e.result
}

// inputs returns what the Service's cached result was computed from.
func (c *resultCache) inputs(key types.NamespacedName) (*corev1.Service, []*discoveryv1.EndpointSlice, bool) {
	e := c.entries[key]
	if e == nil {
		return nil, nil, false
	}
	return e.svc, e.slices, true
}

// forget drops a Service that is gone.
func (c *resultCache) forget(key types.NamespacedName) { delete(c.entries, key) }

// retain drops every Service not in keep.
func (c *resultCache) retain(keep map[types.NamespacedName]bool) {
	for key := range c.entries {
		if !keep[key] {
			delete(c.entries, key)
		}
	}
}

// slicesFrom returns a lookup of a Service's slices, sorted by name.
func slicesFrom(idx cache.Indexer) func(ns, name string) []*discoveryv1.EndpointSlice {
	return func(ns, name string) []*discoveryv1.EndpointSlice {
		objs, err := idx.ByIndex(byServiceIndex, ns+"/"+name)
		if err != nil {
			return nil // only an unknown index name fails
		}
		out := make([]*discoveryv1.EndpointSlice, 0, len(objs))
		for _, o := range objs {
			if sl, ok := o.(*discoveryv1.EndpointSlice); ok {
				out = append(out, sl)
			}
		}
		slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
		return out
	}
}
