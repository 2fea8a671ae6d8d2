package controller

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// realisticPod is a pod as the API serves it: containers with images,
// env, mounts, probes; status with conditions; managed fields.
func realisticPod(i int) *corev1.Pod {
	c := corev1.Container{
		Name: "app", Image: "registry.example/app:v1.2.3",
		Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {ContainerPort: 9090}},
		Env:            []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "two"}, {Name: "C", Value: "three"}},
		VolumeMounts:   []corev1.VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "token", MountPath: "/var/run/secrets"}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready"}}},
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("app-%d", i), Namespace: fmt.Sprintf("ns-%d", i%100),
			Labels:          map[string]string{"app": fmt.Sprintf("app-%d", i%10), "pod-template-hash": "abcdef"},
			Annotations:     map[string]string{"prometheus.io/scrape": "true", "kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: "Update"}, {Manager: "kube-controller-manager", Operation: "Update"}},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "app-abcdef"}}},
		Spec: corev1.PodSpec{NodeName: fmt.Sprintf("n%d", i%50), Containers: []corev1.Container{c, c},
			Volumes: []corev1.Volume{{Name: "data"}, {Name: "token"}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "198.18.128.1", PodIPs: []corev1.PodIP{{IP: "198.18.128.1"}},
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Image: "registry.example/app:v1.2.3", ImageID: "sha256:0123"}}},
	}
}

// BenchmarkInformerBytesPerPod: what the pod informer's cache holds per
// pod once slimPod has dropped what policies cannot see.
func BenchmarkInformerBytesPerPod(b *testing.B) {
	const n = 10000
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		pods[i] = realisticPod(i)
	}
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		kept := make([]any, n)
		for i, p := range pods {
			kept[i], _ = slimPod(p)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/pod")
		runtime.KeepAlive(kept)
	}
}
