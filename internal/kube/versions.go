package kube

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// ObjectVersion is how far the informer events of one kind have gone.
type ObjectVersion struct {
	// Kind is the API resource ("services", "endpointslices", ...).
	Kind string
	// ResourceVersion is the numerically highest resourceVersion an event
	// carried, as the API server wrote it; "" when none was a number.
	ResourceVersion string
	// Generation counts the events recorded: adds, updates that changed
	// the resourceVersion, and deletes, tombstones included.
	Generation uint64
}

// Versions records, per kind, what the informers have delivered, so that
// the daemon can say which object versions a sync covered: a test or an
// operator then waits for "my change is programmed" instead of sleeping.
// It is safe for concurrent use; a nil *Versions records nothing, so
// controllers built without one (unit tests) need no special case.
//
// resourceVersions are opaque strings to Kubernetes clients, but etcd's
// are its revision in decimal, one counter for every kind: comparing them
// as numbers is what makes "covered rv >= the rv my write returned"
// meaningful. One that does not parse is counted but never becomes the
// highest.
type Versions struct {
	mu    sync.Mutex
	kinds map[string]*kindVersion
}

type kindVersion struct {
	rv         uint64
	raw        string
	generation uint64
}

// NewVersions returns an empty tracker.
func NewVersions() *Versions { return &Versions{kinds: map[string]*kindVersion{}} }

// Observe records one informer event's object under kind ("" names it
// after the object's type, Node → "nodes"). The informer's store already
// holds the object when a handler runs, so a sync that starts after
// Observe returns reads it (or a newer one): call Observe before the
// trigger, and after anything the sync relies on to find the object (a
// dirty mark). A cache.DeletedFinalStateUnknown (a delete the watch missed
// and a relist found) is counted without a resourceVersion: its object is
// the last state seen, not the deletion.
func (v *Versions) Observe(kind string, obj any) {
	if v == nil {
		return
	}
	if kind == "" {
		kind = KindOf(obj)
	}
	var raw string
	if _, tomb := obj.(cache.DeletedFinalStateUnknown); !tomb {
		if o, ok := obj.(versioned); ok {
			raw = o.GetResourceVersion()
		}
	}
	n, err := strconv.ParseUint(raw, 10, 64)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.kinds == nil {
		v.kinds = map[string]*kindVersion{}
	}
	k := v.kinds[kind]
	if k == nil {
		k = &kindVersion{}
		v.kinds[kind] = k
	}
	k.generation++
	if err == nil && (k.raw == "" || n > k.rv) {
		k.rv, k.raw = n, raw
	}
}

// Recorder returns Observe bound to kind, for handlers of a controller's
// own (v may be nil).
func (v *Versions) Recorder(kind string) func(obj any) {
	return func(obj any) { v.Observe(kind, obj) }
}

// Snapshot returns a copy sorted by kind (nil for a nil tracker).
func (v *Versions) Snapshot() []ObjectVersion {
	if v == nil {
		return nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]ObjectVersion, 0, len(v.kinds))
	for kind, k := range v.kinds {
		out = append(out, ObjectVersion{Kind: kind, ResourceVersion: k.raw, Generation: k.generation})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// OnChangeTracked is OnChange that also records every event in v under
// kind ("" for the object's own kind, for a loop over informers of several
// kinds). It records before it triggers: the sync the trigger starts
// snapshots v first, and an event missing from that snapshot would be
// reported covered only by a later sync, as late as the periodic one.
// v may be nil.
func OnChangeTracked(trigger func(), v *Versions, kind string) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { v.Observe(kind, obj); trigger() },
		UpdateFunc: func(oldObj, newObj any) {
			if SameVersion(oldObj, newObj) {
				return
			}
			v.Observe(kind, newObj)
			trigger()
		},
		DeleteFunc: func(obj any) { v.Observe(kind, obj); trigger() },
	}
}

var kindCache sync.Map // reflect.Type → string

// KindOf names an object's API resource after its Go type (Node → "nodes",
// NetworkPolicy → "networkpolicies"); the typed API structs are named for
// their kind. A tombstone is named for the object it holds.
func KindOf(obj any) string {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	typ := reflect.TypeOf(obj)
	if typ == nil {
		return "unknown"
	}
	if k, ok := kindCache.Load(typ); ok {
		return k.(string)
	}
	name := typ.Name()
	if typ.Kind() == reflect.Pointer {
		name = typ.Elem().Name()
	}
	if name == "" {
		name = "unknown"
	}
	plural, _ := meta.UnsafeGuessKindToResource(schema.GroupVersionKind{Kind: name})
	k := strings.ToLower(plural.Resource)
	kindCache.Store(typ, k)
	return k
}
