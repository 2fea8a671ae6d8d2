package kube

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"k8s.io/client-go/tools/cache"
)

// Factory is what StartAndSync needs of an informer factory (the typed
// SharedInformerFactory, or a filtered one).
type Factory interface {
	Start(stopCh <-chan struct{})
	WaitForCacheSync(stopCh <-chan struct{}) map[reflect.Type]bool
}

// StartAndSync starts the informers the factories were asked for and waits
// until every one has listed its objects. Callers program nothing before it
// returns nil: a proxy that syncs with half of the Services known would
// delete the other half from the kernel.
func StartAndSync(ctx context.Context, factories ...Factory) error {
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	var missing []string
	for _, f := range factories {
		for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
			if !ok {
				missing = append(missing, typ.String())
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("informers did not sync (%s): %w", strings.Join(missing, ", "), context.Cause(ctx))
	}
	return nil
}

// OnChange returns an event handler that calls trigger for every add, update
// and delete. Informer callbacks only record that something changed; the
// sync loop reads the listers (practice 1 of STYLE.md). Updates that change
// nothing (resyncs) are ignored by ResourceVersion. OnChangeTracked also
// records the versions for status.
func OnChange(trigger func()) cache.ResourceEventHandler {
	return OnChangeTracked(trigger, nil, "")
}

type versioned interface{ GetResourceVersion() string }

// SameVersion reports whether an update is a resync: both objects carry the
// same, non-empty ResourceVersion, so nothing changed.
func SameVersion(a, b any) bool {
	va, ok1 := a.(versioned)
	vb, ok2 := b.(versioned)
	return ok1 && ok2 && va.GetResourceVersion() != "" && va.GetResourceVersion() == vb.GetResourceVersion()
}
