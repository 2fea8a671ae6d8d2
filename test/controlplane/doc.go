// Package controlplane runs a real Kubernetes control plane for integration
// and end-to-end tests: etcd, kube-apiserver and kube-controller-manager as
// processes on loopback, built from source by hack/build-controlplane.sh and
// cached outside the repository.
//
// There is no kubelet and no scheduler. Tests create Nodes themselves, put
// Pods on them with spec.nodeName and write the Pods' status (see
// CreateNode, CreatePod, SetPodRunning); kube-controller-manager does the
// rest a real cluster does for nodenet: node pod CIDRs (nodeipam),
// EndpointSlices, service accounts, namespace deletion, garbage collection.
//
// Every identity is a static bearer token: the admin (system:masters), and
// one per daemon (routerd, proxyd, firewalld) holding exactly the RBAC of
// rbac.yaml, the Helm chart's RBAC rendered, so a daemon that needs a
// permission it was not granted fails here as it would in a cluster.
package controlplane
