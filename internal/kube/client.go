// Package kube sets up client-go for the daemons: the API connection
// (in-cluster or a kubeconfig, protobuf on the wire), informers that report
// every change to one trigger, and the wait for all of them to sync before
// anything is programmed.
package kube

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// RESTConfig returns the API connection: the pod's service account when
// kubeconfig is empty, else that kubeconfig file. Protobuf is used on the
// wire: the daemons list and watch every Service, EndpointSlice and Pod of the
// cluster, where JSON costs several times the CPU.
func RESTConfig(kubeconfig, userAgent string) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config (use --kubeconfig outside a cluster): %w", err)
		}
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
		}
	}
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.UserAgent = userAgent
	// Informers make a handful of long watches; the budget is for the
	// occasional write (events, status).
	cfg.QPS, cfg.Burst = 20, 50
	return cfg, nil
}

// NewClient returns a clientset for cfg.
func NewClient(cfg *rest.Config) (kubernetes.Interface, error) {
	return kubernetes.NewForConfig(cfg)
}
