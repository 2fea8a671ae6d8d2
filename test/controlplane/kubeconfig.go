package controlplane

import (
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Tests create objects in bursts: client-go's default 5 QPS would make them
// wait on client-side throttling rather than on the control plane.
const (
	clientQPS   = 200
	clientBurst = 400
)

// Kubeconfig is the path of id's kubeconfig file, for daemons run as
// processes (--kubeconfig) and for kubectl.
func (cp *ControlPlane) Kubeconfig(id Identity) string {
	return filepath.Join(cp.Dir, "kubeconfig-"+string(id))
}

// RESTConfig is a fresh client configuration acting as id.
func (cp *ControlPlane) RESTConfig(id Identity) *rest.Config {
	return &rest.Config{
		Host:            cp.URL,
		BearerToken:     cp.tokens[id],
		TLSClientConfig: rest.TLSClientConfig{CAData: cp.pki.caPEM},
		QPS:             clientQPS,
		Burst:           clientBurst,
		UserAgent:       "nodenet-test/" + string(id),
	}
}

// Client is a clientset acting as id.
func (cp *ControlPlane) Client(id Identity) (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(cp.RESTConfig(id))
}

// writeKubeconfigs writes one kubeconfig per identity.
func (cp *ControlPlane) writeKubeconfigs() error {
	const name = "nodenet-test"
	for _, id := range identities() {
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters[name] = &clientcmdapi.Cluster{Server: cp.URL, CertificateAuthorityData: cp.pki.caPEM}
		cfg.AuthInfos[string(id)] = &clientcmdapi.AuthInfo{Token: cp.tokens[id]}
		cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: string(id)}
		cfg.CurrentContext = name
		if err := clientcmd.WriteToFile(*cfg, cp.Kubeconfig(id)); err != nil {
			return err
		}
	}
	return nil
}
