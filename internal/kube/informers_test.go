package kube

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

func TestStartAndSyncThenTrigger(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", ResourceVersion: "1"}}
	client := fake.NewClientset(node)
	f := informers.NewSharedInformerFactory(client, 0)
	var triggers atomic.Int32
	changed := make(chan struct{}, 16)
	inf := f.Core().V1().Nodes().Informer()
	if _, err := inf.AddEventHandler(OnChange(func() {
		triggers.Add(1)
		changed <- struct{}{}
	})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := StartAndSync(ctx, f); err != nil {
		t.Fatal(err)
	}
	if !inf.HasSynced() {
		t.Fatal("StartAndSync returned before the informer synced")
	}
	if _, err := f.Core().V1().Nodes().Lister().Get("n1"); err != nil {
		t.Fatalf("lister after sync: %v", err)
	}
	<-changed // the initial add

	n2 := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}
	if _, err := client.CoreV1().Nodes().Create(ctx, n2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-ctx.Done():
		t.Fatal("no trigger for a new node")
	}
}

func TestStartAndSyncReportsCancellation(t *testing.T) {
	client := fake.NewClientset()
	f := informers.NewSharedInformerFactory(client, 0)
	f.Core().V1().Services().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := StartAndSync(ctx, f); err == nil {
		t.Fatal("no error although the informers could not sync")
	}
}

func TestOnChangeIgnoresResyncs(t *testing.T) {
	n := 0
	h := OnChange(func() { n++ })
	a := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: "5"}}
	b := a.DeepCopy()
	h.OnUpdate(a, b)
	if n != 0 {
		t.Fatal("a resync (same resourceVersion) triggered a sync")
	}
	b.ResourceVersion = "6"
	h.OnUpdate(a, b)
	h.OnAdd(a, false)
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: "a", Obj: a})
	if n != 3 {
		t.Fatalf("%d triggers, want 3", n)
	}
}

func TestRESTConfigFromKubeconfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	const kc = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://198.18.0.1:6443", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: "t0k3n"}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := RESTConfig(path, "proxyd/test")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://198.18.0.1:6443" || cfg.BearerToken != "t0k3n" || cfg.UserAgent != "proxyd/test" ||
		cfg.ContentType != "application/vnd.kubernetes.protobuf" {
		t.Fatalf("config %+v", cfg)
	}
	if _, err := RESTConfig(filepath.Join(t.TempDir(), "missing"), "x"); err == nil {
		t.Fatal("missing kubeconfig accepted")
	}
}
