package controller

import (
	"errors"
	"fmt"
	"net/netip"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/routerd/internal/desired"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
)

// input is what one sync reads from the informers and the peers' facts.
type input struct {
	node      *corev1.Node
	nodes     []*corev1.Node
	passwords map[string]string
	services  []*corev1.Service
	slices    []*discoveryv1.EndpointSlice
	// useProxyd: the service IPs are proxyd's (vips).
	useProxyd bool
	vips      []desired.VIP
	// waitFW: the CNI config waits for firewalld's policies (fwInForce).
	waitFW, fwInForce bool
}

func (c *Controller) input() (input, error) {
	var in input
	node, err := c.nodes.Get(c.deps.Config.NodeName)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return in, fmt.Errorf("node %q not found in the API", c.deps.Config.NodeName)
		}
		return in, err
	}
	in.node = node
	var errs []error
	in.nodes, err = c.nodes.List(labels.Everything())
	errs = append(errs, err)
	if c.secrets != nil {
		secrets, err := c.secrets.List(labels.Everything())
		errs = append(errs, err)
		in.passwords = map[string]string{}
		for _, s := range secrets {
			if pw, ok := s.Data[desired.PasswordKey]; ok {
				in.passwords[s.Name] = string(pw)
			}
		}
	}
	if c.services != nil {
		var e1, e2 error
		in.services, e1 = c.services.List(labels.Everything())
		in.slices, e2 = c.slices.List(labels.Everything())
		errs = append(errs, e1, e2)
	}
	if facts := c.peerFacts["proxyd"]; facts != nil {
		in.useProxyd = true
		for _, v := range facts().VIPs {
			if vip, ok := vipOf(v); ok {
				in.vips = append(in.vips, vip)
			}
		}
	}
	fw := c.peerFacts["firewalld"]
	in.waitFW = c.cfg.WaitForFirewalld == "true" || (c.cfg.WaitForFirewalld == "auto" && fw != nil)
	if fw != nil {
		in.fwInForce = fw().PolicyState.GetInForce()
	}
	return in, errors.Join(errs...)
}

// vipOf converts a VIP proxyd published; node ports are not advertised.
func vipOf(v *nodev1.ServiceVIP) (desired.VIP, bool) {
	ip, err := netip.ParseAddr(v.GetKey().GetIp())
	if err != nil {
		return desired.VIP{}, false
	}
	var kind desired.VIPKind
	switch v.GetKind() {
	case nodev1.VIPKind_VIP_KIND_CLUSTER_IP:
		kind = desired.ClusterIP
	case nodev1.VIPKind_VIP_KIND_EXTERNAL_IP:
		kind = desired.ExternalIP
	case nodev1.VIPKind_VIP_KIND_LOAD_BALANCER:
		kind = desired.LoadBalancerIP
	default:
		return desired.VIP{}, false
	}
	return desired.VIP{Addr: ip.Unmap(), Kind: kind, ExternalTrafficLocal: v.GetExternalTrafficLocal(),
		LocalEndpoints: v.GetLocalEndpoints(), Service: v.GetService()}, true
}
