package desired

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// serviceProxyName is the label by which a Service asks for another proxy
// than the default one (kube-proxy and proxyd leave it alone).
const serviceProxyName = "service.kubernetes.io/service-proxy-name"

// vipsFromAPI is the fallback without proxyd: the service IPs of the
// Services a proxy serves, with local endpoints from the EndpointSlices.
func vipsFromAPI(services []*corev1.Service, slices []*discoveryv1.EndpointSlice, node string) ([]VIP, []Problem) {
	var ps problemList
	local := localEndpoints(slices, node)
	var out []VIP
	for _, s := range services {
		if s.Spec.Type == corev1.ServiceTypeExternalName || s.Labels[serviceProxyName] != "" {
			continue
		}
		name := s.Namespace + "/" + s.Name
		etpLocal := s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
		add := func(kind VIPKind, ss ...string) {
			for _, a := range ss {
				if a == "" || a == corev1.ClusterIPNone {
					continue
				}
				ip, err := netip.ParseAddr(a)
				if err != nil || ip.Zone() != "" {
					ps.add("Service", s.Namespace, s.Name, ReasonBadService, "%s %q is not an IP address; not advertised", kind, a)
					continue
				}
				out = append(out, VIP{Addr: ip.Unmap(), Kind: kind, ExternalTrafficLocal: etpLocal, LocalEndpoints: local[name], Service: name})
			}
		}
		clusterIPs := s.Spec.ClusterIPs
		if len(clusterIPs) == 0 {
			clusterIPs = []string{s.Spec.ClusterIP}
		}
		add(ClusterIP, clusterIPs...)
		add(ExternalIP, s.Spec.ExternalIPs...)
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			for _, ing := range s.Status.LoadBalancer.Ingress {
				add(LoadBalancerIP, ing.IP)
			}
		}
	}
	return out, ps.list
}

// localEndpoints says which Services ("namespace/name") have a ready
// endpoint on node.
func localEndpoints(slices []*discoveryv1.EndpointSlice, node string) map[string]bool {
	out := map[string]bool{}
	for _, sl := range slices {
		svc := sl.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		for _, ep := range sl.Endpoints {
			ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
			if ready && ep.NodeName != nil && *ep.NodeName == node {
				out[sl.Namespace+"/"+svc] = true
			}
		}
	}
	return out
}
