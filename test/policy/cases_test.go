package policy

import (
	"maps"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// A case is a sequence of steps, each the complete state the cluster must
// be in (policies, labels) and the full matrix that state must produce. The
// kernel test (TestPolicy) applies a step by diffing against the previous
// one (so a step can create, update or delete a policy, or relabel a pod or
// a namespace) and polls the matrix until it matches. The same steps are
// checked without root against a reference evaluator of the NetworkPolicy
// API (TestCasesAgreeWithReference), so a hand-written matrix that
// misreads the API fails there, not as a firewalld bug.

// policyCase is one named case.
type policyCase struct {
	name string
	// doc says what the case checks; it is logged when the case runs.
	doc string
	// ungated cases run even when firewalld does not enforce policies yet:
	// only the one with no policy at all.
	ungated bool
	// needsSCTP cases are about SCTP alone: skipped where the kernel has none.
	needsSCTP bool
	// steps are built from the cluster's addresses (ipBlock cases need
	// real pod IPs and pod CIDRs).
	steps func(a addresses) []step
}

// step is one state of a case.
type step struct {
	name string
	// policies is every policy in force (nothing else is).
	policies []*networkingv1.NetworkPolicy
	// podLabels and nsLabels replace the labels of these pods and
	// namespaces; the others have their default labels.
	podLabels map[Peer]map[string]string
	nsLabels  map[string]map[string]string
	// expect writes the matrix by hand (nil: everything reachable).
	expect func(e *Expectation)
}

// addresses is what cases need to know of the cluster's address plan.
type addresses interface {
	PodIP(p Peer) netip.Addr
	// PodCIDR is node i's pod CIDR.
	PodCIDR(node int) netip.Prefix
	WorldIP() netip.Addr
}

// allCases are the cases, in the order TestPolicy runs them.
func allCases() []policyCase {
	var cs []policyCase
	for _, group := range [][]policyCase{isolationCases(), peerCases(), ipBlockCases(), portCases(), changeCases()} {
		cs = append(cs, group...)
	}
	return cs
}

// The cluster every case runs against (DefaultModel): its namespaces are
// labelled ns=<name> (and kubernetes.io/metadata.name=<name> by the
// apiserver), its pods pod=<name>. Pods a and b run on node0 and c on
// node1, so every pair of namespaces has same-node and cross-node pairs.

// nodeOf is the index of the node a pod of the model runs on.
func nodeOf(p Peer) int {
	if p.Name == "c" {
		return 1
	}
	return 0
}

// defaultPodLabels are a pod's labels when no step says otherwise.
func defaultPodLabels(p Peer) map[string]string { return map[string]string{"pod": p.Name} }

// defaultNamespaceLabels are a namespace's own labels when no step says
// otherwise (the apiserver adds kubernetes.io/metadata.name).
func defaultNamespaceLabels(ns string) map[string]string { return map[string]string{"ns": ns} }

// namespaceNameLabel is set by the apiserver on every namespace, to its
// name: what selects a namespace by name.
const namespaceNameLabel = corev1.LabelMetadataName

// podLabelsAt are pod p's labels in step s.
func podLabelsAt(s step, p Peer) map[string]string {
	if l, ok := s.podLabels[p]; ok {
		return maps.Clone(l)
	}
	return defaultPodLabels(p)
}

// namespaceLabelsAt are namespace ns's labels in step s, including the
// one the apiserver sets.
func namespaceLabelsAt(s step, ns string) map[string]string {
	l, ok := s.nsLabels[ns]
	if !ok {
		l = defaultNamespaceLabels(ns)
	}
	l = maps.Clone(l)
	l[namespaceNameLabel] = ns
	return l
}

// httpPort is the container port every pod names "http": TCP 80 on pods a
// and b, TCP 81 on pod c, so a policy naming it allows a different number
// on different pods.
func httpPort(p Peer) Port {
	if p.Name == "c" {
		return TCP(81)
	}
	return TCP(80)
}

// podContainers are a pod's containers as the API sees them: "app" declares
// every served port under its ContainerPortName, "sidecar" declares
// httpPort as "http" (a port may be declared by two containers; names are
// unique per pod).
func podContainers(p Peer) []corev1.Container {
	app := corev1.Container{Name: "app", Image: "nodenet.invalid/echo"}
	for _, port := range ServedPorts() {
		app.Ports = append(app.Ports, corev1.ContainerPort{Name: port.ContainerPortName(), ContainerPort: port.Number, Protocol: port.Protocol})
	}
	h := httpPort(p)
	sidecar := corev1.Container{Name: "sidecar", Image: "nodenet.invalid/echo",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: h.Number, Protocol: h.Protocol}}}
	return []corev1.Container{app, sidecar}
}
