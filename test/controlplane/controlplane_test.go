package controlplane_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/nodenet/nodenet/test/controlplane"
)

// TestControlPlane drives what nodenet needs from a cluster through the real
// apiserver and controllers: node pod CIDRs, Service ClusterIPs, EndpointSlices
// of ready pods, the daemons' RBAC; then checks Stop leaves no process.
func TestControlPlane(t *testing.T) {
	cp := controlplane.StartForTest(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := cp.Admin

	// kube-controller-manager's nodeipam gives the node a /24 of ClusterCIDR.
	const nodeName = "node-1"
	nodeIP := netip.MustParseAddr("198.18.0.11")
	if _, err := controlplane.CreateNode(ctx, c, nodeName, nodeIP); err != nil {
		t.Fatal(err)
	}
	cidrs, err := controlplane.WaitForPodCIDRs(ctx, c, nodeName)
	if err != nil {
		t.Fatal(err)
	}
	clusterCIDR := netip.MustParsePrefix(controlplane.ClusterCIDR)
	podCIDR := cidrs[0]
	if podCIDR.Bits() != controlplane.NodeCIDRMaskSize || !clusterCIDR.Contains(podCIDR.Addr()) {
		t.Fatalf("node pod CIDR %v, want a /%d in %v", podCIDR, controlplane.NodeCIDRMaskSize, clusterCIDR)
	}
	t.Logf("node %s: pod CIDR %v", nodeName, podCIDR)

	// A Service gets a ClusterIP from ServiceCIDR.
	const ns = "demo"
	if _, err := controlplane.CreateNamespace(ctx, c, ns); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	svc, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clusterIP, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !netip.MustParsePrefix(controlplane.ServiceCIDR).Contains(clusterIP) {
		t.Fatalf("ClusterIP %q, want one in %s", svc.Spec.ClusterIP, controlplane.ServiceCIDR)
	}

	// A pod on the node, marked running and ready by hand (no kubelet),
	// shows up in the Service's EndpointSlice as ready.
	podIP := podCIDR.Addr().Next().Next() // .2: .1 is the node's bridge by convention
	pod := controlplane.NewPod(ns, "web-1", nodeName, labels)
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	if _, err := controlplane.CreatePod(ctx, c, pod); err != nil {
		t.Fatal(err)
	}
	if _, err := controlplane.SetPodRunning(ctx, c, ns, pod.Name, podIP); err != nil {
		t.Fatal(err)
	}
	ep := waitForEndpoint(ctx, t, c, ns, svc.Name, podIP)
	if ep.Conditions.Ready == nil || !*ep.Conditions.Ready || ep.NodeName == nil || *ep.NodeName != nodeName {
		t.Fatalf("endpoint %+v: want ready on %s", ep, nodeName)
	}
	t.Logf("service %s/%s %v → endpoint %v ready", ns, svc.Name, clusterIP, podIP)

	checkRBAC(ctx, t, cp)

	// Stop leaves none of the processes it started.
	pids := cp.PIDs()
	if len(pids) != 3 {
		t.Fatalf("PIDs: %v, want etcd, kube-apiserver, kube-controller-manager", pids)
	}
	for name, pid := range pids {
		t.Logf("%s: pid %d, %s", name, pid, rss(pid))
	}
	begin := time.Now()
	cp.Stop()
	t.Logf("stopped in %v", time.Since(begin).Round(time.Millisecond))
	for name, pid := range pids {
		if alive(pid, name) {
			t.Errorf("%s (pid %d) still running after Stop", name, pid)
		}
	}
}

// waitForEndpoint waits until the Service's EndpointSlices hold ip.
func waitForEndpoint(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, service string, ip netip.Addr) discoveryv1.Endpoint {
	t.Helper()
	var found discoveryv1.Endpoint
	err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		slices, err := c.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
		if err != nil {
			return false, err
		}
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				for _, a := range ep.Addresses {
					if a == ip.String() && ep.Conditions.Ready != nil && *ep.Conditions.Ready {
						found = ep
						return true, nil
					}
				}
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no ready endpoint %v in the EndpointSlices of %s/%s: %v", ip, ns, service, err)
	}
	return found
}

// checkRBAC makes real requests as the daemons: what rbac.yaml (the Helm
// chart's RBAC, rendered) grants succeeds, the rest is Forbidden.
func checkRBAC(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane) {
	t.Helper()
	clients := map[controlplane.Identity]kubernetes.Interface{}
	for _, id := range controlplane.Daemons() {
		c, err := cp.Client(id)
		if err != nil {
			t.Fatal(err)
		}
		clients[id] = c
	}
	patch := []byte(`{"metadata":{"annotations":{"nodenet.io/test":"x"}}}`)
	event := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{GenerateName: "node-1."},
		InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-1"},
		Reason:         "Test", Message: "rbac check", Type: corev1.EventTypeNormal,
	}
	tests := []struct {
		id      controlplane.Identity
		what    string
		allowed bool
		do      func(kubernetes.Interface) error
	}{
		{controlplane.Proxyd, "list services", true, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Proxyd, "list endpointslices", true, func(c kubernetes.Interface) error {
			_, err := c.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Proxyd, "create events", true, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Events("default").Create(ctx, event, metav1.CreateOptions{})
			return err
		}},
		{controlplane.Proxyd, "delete nodes", false, func(c kubernetes.Interface) error {
			return c.CoreV1().Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{})
		}},
		{controlplane.Proxyd, "list secrets", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Routerd, "patch nodes", true, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Nodes().Patch(ctx, "node-1", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		}},
		{controlplane.Routerd, "list services", true, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Routerd, "list secrets of its namespace", true, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(controlplane.DaemonNamespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Routerd, "list secrets of all namespaces", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Routerd, "update services", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Services("default").Update(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"}}, metav1.UpdateOptions{})
			return err
		}},
		{controlplane.Firewalld, "list networkpolicies", true, func(c kubernetes.Interface) error {
			_, err := c.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Firewalld, "list pods", true, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Firewalld, "patch nodes", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Nodes().Patch(ctx, "node-1", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		}},
		// Each role stops at what its daemon uses: the rules of one daemon
		// are not the others' (rbac.yaml is the chart's RBAC rendered).
		{controlplane.Firewalld, "list secrets", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(controlplane.DaemonNamespace).List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Firewalld, "list services", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Services("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Firewalld, "list namespaces", true, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Proxyd, "patch nodes", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Nodes().Patch(ctx, "node-1", types.StrategicMergePatchType, patch, metav1.PatchOptions{})
			return err
		}},
		{controlplane.Proxyd, "list pods", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Proxyd, "list networkpolicies", false, func(c kubernetes.Interface) error {
			_, err := c.NetworkingV1().NetworkPolicies("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Routerd, "list pods", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{controlplane.Routerd, "delete nodes", false, func(c kubernetes.Interface) error {
			return c.CoreV1().Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{})
		}},
		{controlplane.Routerd, "create secrets of its namespace", false, func(c kubernetes.Interface) error {
			_, err := c.CoreV1().Secrets(controlplane.DaemonNamespace).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{GenerateName: "x-"}}, metav1.CreateOptions{})
			return err
		}},
	}
	for _, tt := range tests {
		err := tt.do(clients[tt.id])
		switch {
		case tt.allowed && err != nil:
			t.Errorf("%s: %s: %v, want allowed", tt.id, tt.what, err)
		case !tt.allowed && !apierrors.IsForbidden(err):
			t.Errorf("%s: %s: %v, want Forbidden", tt.id, tt.what, err)
		}
	}
}

// rss is a process's resident memory as /proc reports it, for the log.
func rss(pid int) string {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return err.Error()
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return "RSS " + strings.TrimSpace(v)
		}
	}
	return "RSS unknown"
}

// alive reports whether pid is still a process running binary name (a pid
// reused by something else does not count).
func alive(pid int, name string) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return strings.Contains(string(cmdline), name)
}
