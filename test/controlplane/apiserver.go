package controlplane

import (
	"context"
	"fmt"
	"path/filepath"
)

// startAPIServer starts kube-apiserver on a free loopback port against etcd
// and returns it with its URL once /readyz answers (which includes the
// bootstrap RBAC policy and the default ServiceCIDR being in place).
func (cp *ControlPlane) startAPIServer(ctx context.Context, etcdURL string) (*process, string, error) {
	getter, err := newHTTPSGetter(cp.pki.caPEM, cp.tokens[Admin])
	if err != nil {
		return nil, "", err
	}
	defer getter.client.CloseIdleConnections()
	var url string
	p, err := startWithRetry(func() (*process, error) {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		url = fmt.Sprintf("https://127.0.0.1:%d", ports[0])
		args := []string{
			"--etcd-servers=" + etcdURL,
			"--bind-address=127.0.0.1",
			fmt.Sprintf("--secure-port=%d", ports[0]),
			// 127.0.0.1 as the kubernetes Service's endpoint is only
			// accepted with the endpoint reconciler off (PITFALLS).
			"--advertise-address=127.0.0.1",
			"--endpoint-reconciler-type=none",
			"--tls-cert-file=" + cp.pki.certFile,
			"--tls-private-key-file=" + cp.pki.keyFile,
			"--client-ca-file=" + cp.pki.caFile,
			"--token-auth-file=" + cp.tokenFile(),
			// Node for the day a test acts as a kubelet; RBAC for everyone else.
			"--authorization-mode=Node,RBAC",
			"--anonymous-auth=false",
			"--service-cluster-ip-range=" + ServiceCIDR,
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + cp.pki.saPubFile,
			"--service-account-signing-key-file=" + cp.pki.saKeyFile,
			// Flow control only adds start-up work and queueing a test
			// does not want.
			"--enable-priority-and-fairness=false",
			"--profiling=false",
			// nodenet's own pods are privileged (hostNetwork, NET_ADMIN):
			// tests may create them as the chart does.
			"--allow-privileged=true",
		}
		p, err := cp.spawner.start("kube-apiserver", cp.bins["kube-apiserver"], filepath.Join(cp.Dir, "kube-apiserver.log"), args, cp.env())
		if err != nil {
			return nil, err
		}
		if err := waitReady(ctx, p, func(ctx context.Context) error { return getter.ok(ctx, url+"/readyz") }); err != nil {
			p.stop(0)
			return nil, err
		}
		return p, nil
	})
	return p, url, err
}
