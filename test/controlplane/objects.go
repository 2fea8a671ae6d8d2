package controlplane

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// What a kubelet and a scheduler would do, done by hand: there are neither.

// objectPollInterval is how often the helpers below look for what a
// controller should have done.
const objectPollInterval = 20 * time.Millisecond

// CreateNode registers a Node the way a kubelet would: its InternalIP (in
// NodeCIDR), its hostname, and Ready. Nothing ever marks it NotReady (the
// node lifecycle controller is not run).
func CreateNode(ctx context.Context, c kubernetes.Interface, name string, internalIP netip.Addr) (*corev1.Node, error) {
	now := metav1.Now()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{corev1.LabelHostname: name, corev1.LabelOSStable: "linux"},
		},
		Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: internalIP.String()},
				{Type: corev1.NodeHostName, Address: name},
			},
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: now, LastTransitionTime: now,
			}},
		},
	}
	created, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	if len(created.Status.Addresses) > 0 {
		return created, nil
	}
	// The status was dropped on create (it is a subresource): write it.
	created.Status = node.Status
	return c.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
}

// WaitForPodCIDRs waits until kube-controller-manager has given the node
// its pod CIDRs (spec.podCIDRs) and returns them.
func WaitForPodCIDRs(ctx context.Context, c kubernetes.Interface, node string) ([]netip.Prefix, error) {
	var cidrs []netip.Prefix
	err := wait.PollUntilContextCancel(ctx, objectPollInterval, true, func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err != nil || len(n.Spec.PodCIDRs) == 0 {
			return false, err
		}
		for _, s := range n.Spec.PodCIDRs {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return false, fmt.Errorf("node %s: podCIDR %q: %w", node, s, err)
			}
			cidrs = append(cidrs, p)
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("node %s got no pod CIDR: %w", node, err)
	}
	return cidrs, nil
}

// CreateNamespace creates a namespace and waits for its "default"
// ServiceAccount, which the serviceaccount controller adds and without which
// Pod creation is refused.
func CreateNamespace(ctx context.Context, c kubernetes.Interface, name string) (*corev1.Namespace, error) {
	ns, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	err = wait.PollUntilContextCancel(ctx, objectPollInterval, true, func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().ServiceAccounts(name).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return nil, fmt.Errorf("namespace %s got no default ServiceAccount: %w", name, err)
	}
	return ns, nil
}

// NewPod returns a Pod bound to nodeName (no scheduler) with one container
// whose image is never pulled (no kubelet). Add ports, then CreatePod.
func NewPod(namespace, name, nodeName string, labels map[string]string) *corev1.Pod {
	noToken := false
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName: nodeName,
			// No kubelet mounts it; leaving it out keeps the objects small.
			AutomountServiceAccountToken: &noToken,
			Containers:                   []corev1.Container{{Name: "app", Image: "nodenet.invalid/app"}},
		},
	}
}

// CreatePod creates pod; it stays Pending until SetPodRunning.
func CreatePod(ctx context.Context, c kubernetes.Interface, pod *corev1.Pod) (*corev1.Pod, error) {
	return c.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
}

// SetPodRunning writes the status a kubelet writes once a pod runs and
// passes its readiness probe: phase Running, the pod IPs (at most one per
// family), the node's InternalIP as host IP, every condition true and every
// container running and ready.
func SetPodRunning(ctx context.Context, c kubernetes.Interface, namespace, name string, ips ...netip.Addr) (*corev1.Pod, error) {
	if len(ips) == 0 {
		return nil, fmt.Errorf("pod %s/%s: no IP", namespace, name)
	}
	return updatePodStatus(ctx, c, namespace, name, func(ctx context.Context, pod *corev1.Pod) error {
		now := metav1.Now()
		pod.Status.Phase = corev1.PodRunning
		pod.Status.PodIP = ips[0].String()
		pod.Status.PodIPs = nil
		for _, ip := range ips {
			pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip.String()})
		}
		if pod.Status.StartTime == nil {
			pod.Status.StartTime = &now
		}
		node, err := c.CoreV1().Nodes().Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("pod %s/%s: node %q: %w", namespace, name, pod.Spec.NodeName, err)
		}
		pod.Status.HostIP, pod.Status.HostIPs = "", nil
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				if pod.Status.HostIP == "" {
					pod.Status.HostIP = a.Address
				}
				pod.Status.HostIPs = append(pod.Status.HostIPs, corev1.HostIP{IP: a.Address})
			}
		}
		pod.Status.ContainerStatuses = nil
		for _, ctr := range pod.Spec.Containers {
			started := true
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: ctr.Name, Image: ctr.Image, Ready: true, Started: &started,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
			})
		}
		for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
			setPodCondition(pod, t, corev1.ConditionTrue, now)
		}
		return nil
	})
}

// SetPodReady flips a running pod's readiness (a failing or passing
// readiness probe): its Ready and ContainersReady conditions and its
// containers' ready flags.
func SetPodReady(ctx context.Context, c kubernetes.Interface, namespace, name string, ready bool) (*corev1.Pod, error) {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return updatePodStatus(ctx, c, namespace, name, func(_ context.Context, pod *corev1.Pod) error {
		now := metav1.Now()
		setPodCondition(pod, corev1.ContainersReady, status, now)
		setPodCondition(pod, corev1.PodReady, status, now)
		for i := range pod.Status.ContainerStatuses {
			pod.Status.ContainerStatuses[i].Ready = ready
		}
		return nil
	})
}

// DeletePod deletes a pod at once: grace period 0, because no kubelet would
// ever confirm a graceful termination.
func DeletePod(ctx context.Context, c kubernetes.Interface, namespace, name string) error {
	zero := int64(0)
	return c.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
}

// updatePodStatus applies change to the current pod and writes its status,
// again on a conflict (a controller may write the pod meanwhile).
func updatePodStatus(ctx context.Context, c kubernetes.Interface, namespace, name string,
	change func(context.Context, *corev1.Pod) error) (*corev1.Pod, error) {
	var updated *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := c.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if err := change(ctx, pod); err != nil {
			return err
		}
		updated, err = c.CoreV1().Pods(namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return err
	})
	return updated, err
}

func setPodCondition(pod *corev1.Pod, t corev1.PodConditionType, status corev1.ConditionStatus, now metav1.Time) {
	for i := range pod.Status.Conditions {
		if c := &pod.Status.Conditions[i]; c.Type == t {
			if c.Status != status {
				c.Status, c.LastTransitionTime = status, now
			}
			return
		}
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: status, LastTransitionTime: now})
}
