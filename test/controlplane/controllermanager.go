package controlplane

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// controllers are the kube-controller-manager controllers a nodenet cluster
// relies on. Left out on purpose: everything needing a kubelet or scheduler
// (deployments, node lifecycle, pod GC, volumes), which would only act on
// the fake nodes and pods tests create.
var controllers = []string{
	"node-ipam-controller",               // Node spec.podCIDR(s): routerd announces them
	"endpointslice-controller",           // Service → ready Pod IPs: proxyd's real servers
	"endpointslice-mirroring-controller", // selector-less Services with hand-written Endpoints
	"serviceaccount-controller",          // "default" in every namespace, or Pod creation fails
	"serviceaccount-token-controller",    // credentials of the controllers themselves
	"root-ca-certificate-publisher-controller",
	"namespace-controller",         // deleting a test namespace deletes its objects
	"garbage-collector-controller", // owner references (EndpointSlices of a deleted Service)
	"service-cidr-controller",      // ServiceCIDR status and finalizers
}

// startControllerManager starts kube-controller-manager against the
// apiserver and returns it once /healthz answers.
func (cp *ControlPlane) startControllerManager(ctx context.Context) (*process, error) {
	getter, err := newHTTPSGetter(cp.pki.caPEM, "")
	if err != nil {
		return nil, err
	}
	defer getter.client.CloseIdleConnections()
	kubeconfig := cp.Kubeconfig(controllerManager)
	return startWithRetry(func() (*process, error) {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		args := []string{
			"--kubeconfig=" + kubeconfig,
			// Who may call its /metrics etc.: asked of the apiserver
			// (TokenReview, SubjectAccessReview). No lookup of the
			// front-proxy CA, which this apiserver does not have: it
			// would only log errors forever.
			"--authentication-kubeconfig=" + kubeconfig,
			"--authorization-kubeconfig=" + kubeconfig,
			"--authentication-skip-lookup=true",
			"--bind-address=127.0.0.1",
			fmt.Sprintf("--secure-port=%d", ports[0]),
			"--tls-cert-file=" + cp.pki.certFile,
			"--tls-private-key-file=" + cp.pki.keyFile,
			"--leader-elect=false",
			"--controllers=" + strings.Join(controllers, ","),
			"--allocate-node-cidrs=true",
			"--cluster-cidr=" + ClusterCIDR,
			fmt.Sprintf("--node-cidr-mask-size=%d", NodeCIDRMaskSize),
			"--service-cluster-ip-range=" + ServiceCIDR,
			"--service-account-private-key-file=" + cp.pki.saKeyFile,
			"--root-ca-file=" + cp.pki.caFile,
			// Each controller as its own service account with the
			// bootstrap policy's role, as kubeadm runs it: the RBAC the
			// tests see is a real cluster's.
			"--use-service-account-credentials=true",
			// Tests create objects in bursts; the default 20 QPS would
			// make them wait on the controllers' client-side throttling.
			"--kube-api-qps=200",
			"--kube-api-burst=400",
			"--profiling=false",
		}
		p, err := cp.spawner.start("kube-controller-manager", cp.bins["kube-controller-manager"],
			filepath.Join(cp.Dir, "kube-controller-manager.log"), args, cp.env())
		if err != nil {
			return nil, err
		}
		url := fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0])
		if err := waitReady(ctx, p, func(ctx context.Context) error { return getter.ok(ctx, url) }); err != nil {
			p.stop(0)
			return nil, err
		}
		return p, nil
	})
}
