package chart

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/nodenet/nodenet/test/controlplane"
)

// TestServerDryRun applies every render of TestTemplate and
// TestTemplateOptions to the test control plane's real kube-apiserver with
// server-side apply in dry-run mode: its validation and admission accept
// every object, with no warning (deprecated fields or APIs).
func TestServerDryRun(t *testing.T) {
	c, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	cp := controlplane.StartForTest(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	cfg := cp.RESTConfig(controlplane.Admin)
	warnings := &warningLog{}
	cfg.WarningHandler = warnings
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The Prometheus Operator's ServiceMonitor, as a schemaless CRD: enough
	// for the API server to take the chart's ServiceMonitor (its fields are
	// the operator's business, not this test's).
	if err := createServiceMonitorCRD(ctx, dyn); err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disco))
	err = wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) {
		mapper.Reset()
		_, err := mapper.RESTMapping(schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"}, "v1")
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("the ServiceMonitor CRD is not served: %v", err)
	}

	renders := map[string]map[string]any{"options": optionValues()}
	for _, layout := range Layouts {
		for _, s := range subsets() {
			renders[layout+"-"+s.name()] = s.values(layout)
		}
	}
	objects := 0
	for name, vals := range renders {
		r, err := Render(c, vals)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, doc := range Documents(r.Manifest) {
			if err := dryRunApply(ctx, dyn, mapper, []byte(doc)); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			objects++
		}
	}
	if w := warnings.all(); len(w) > 0 {
		t.Errorf("the API server warned: %s", strings.Join(w, "; "))
	}
	t.Logf("%d renders, %d objects accepted by a server-side dry run", len(renders), objects)
}

// dryRunApply server-side applies one manifest document with dryRun=All.
func dryRunApply(ctx context.Context, dyn dynamic.Interface, mapper *restmapper.DeferredDiscoveryRESTMapper, doc []byte) error {
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
		return err
	}
	gvk := obj.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == "namespace" {
		ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	_, err = ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "nodenet-chart-test", Force: true, DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

func createServiceMonitorCRD(ctx context.Context, dyn dynamic.Interface) error {
	crd := &unstructured.Unstructured{}
	err := yaml.Unmarshal([]byte(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`), &crd.Object)
	if err != nil {
		return err
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	_, err = dyn.Resource(gvr).Create(ctx, crd, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// warningLog collects the API server's warnings (rest.WarningHandler).
type warningLog struct {
	mu sync.Mutex
	w  []string
}

func (l *warningLog) HandleWarningHeader(_ int, _ string, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w = append(l.w, text)
}

func (l *warningLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.w...)
}
