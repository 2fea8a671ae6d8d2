package desired

// Traffic policies and who may connect: externalTrafficPolicy and its
// health check, internalTrafficPolicy (KEP-2086), the terminating fallback
// under Local policy (KEP-1669), loadBalancerSourceRanges.
// kubernetes.io/docs/reference/networking/virtual-ips/#traffic-policies,
// .../services-networking/service-traffic-policy/,
// .../tasks/access-application-cluster/create-external-load-balancer/.

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func lbSlice(e ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return v4Slice("lb", "lb-1", httpPorts, e...)
}

func TestExternalTrafficPolicy(t *testing.T) {
	mixed := []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1", local()), ep("198.18.128.2"))}
	remoteOnly := []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.2"), ep("198.18.128.3"))}
	twoPortLB := service("lb", svcType(corev1.ServiceTypeLoadBalancer), clusterIPs("198.19.0.10"),
		ports(sp("http", tcp, 80, 30080), sp("https", tcp, 443, 30443)), ingress(ingIP("198.19.2.10")),
		etpLocal(), healthCheckNodePort(32000))

	runTable(t, []tcase{
		{
			name:   "Cluster (the default): every VIP uses every ready endpoint",
			svcs:   []*corev1.Service{webNP(etpCluster())},
			slices: mixed,
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080",
			},
		},
		{
			name:   "Local on a NodePort Service: the NodePort uses local endpoints and keeps the client address; the ClusterIP does not change",
			svcs:   []*corev1.Service{webNP(etpLocal())},
			slices: mixed,
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr extLocal localEps -> 198.18.128.1:8080*",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080",
			},
		},
		{
			name:   "Local without a local endpoint: the external VIP drops, the ClusterIP still balances",
			svcs:   []*corev1.Service{webNP(etpLocal())},
			slices: remoteOnly,
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr extLocal -> none",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.2:8080 198.18.128.3:8080",
			},
		},
		{
			name:   "Local applies to the externalIPs of a ClusterIP Service too",
			svcs:   []*corev1.Service{web(externalIPs("198.19.1.1"), etpLocal())},
			slices: mixed,
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080",
				"198.19.1.1:80/TCP ExternalIP ns/web:http rr extLocal localEps -> 198.18.128.1:8080*",
			},
		},
		{
			name:   "Local on a NodePort Service: no health check (only LoadBalancer Services get one)",
			svcs:   []*corev1.Service{webNP(etpLocal(), healthCheckNodePort(32000))},
			slices: mixed,
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr extLocal localEps -> 198.18.128.1:8080*",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080",
			},
		},
		{
			name: "Local LoadBalancer: NodePort and ingress VIPs local, health check counts local ready endpoints once across ports",
			svcs: []*corev1.Service{twoPortLB},
			slices: []*discoveryv1.EndpointSlice{v4Slice("lb", "lb-1", eps(epp("http", tcp, 8080), epp("https", tcp, 8443)),
				ep("198.18.128.1", local()), ep("198.18.128.2", local()), ep("198.18.128.3"), ep("198.18.128.4", local(), notReady()))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr extLocal localEps -> 198.18.128.1:8080* 198.18.128.2:8080*",
				"198.18.0.1:30443/TCP NodePort ns/lb:https rr extLocal localEps -> 198.18.128.1:8443* 198.18.128.2:8443*",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080* 198.18.128.3:8080",
				"198.19.0.10:443/TCP ClusterIP ns/lb:https rr localEps -> 198.18.128.1:8443* 198.18.128.2:8443* 198.18.128.3:8443",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr extLocal localEps -> 198.18.128.1:8080* 198.18.128.2:8080*",
				"198.19.2.10:443/TCP LoadBalancer ns/lb:https rr extLocal localEps -> 198.18.128.1:8443* 198.18.128.2:8443*",
			},
			wantHC: []string{"ns/lb :32000 local=2"},
		},
		{
			name:   "Local LoadBalancer without local endpoints: health check answers 0",
			svcs:   []*corev1.Service{loadBalancer("lb", etpLocal(), healthCheckNodePort(32000))},
			slices: []*discoveryv1.EndpointSlice{lbSlice(ep("198.18.128.2"))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr extLocal -> none",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> 198.18.128.2:8080",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr extLocal -> none",
			},
			wantHC: []string{"ns/lb :32000 local=0"},
		},
		{
			// KEP-1669: with Local policy, when every local endpoint is
			// terminating, the still-serving ones keep taking traffic while
			// the health check already reports 0 so the load balancer drains
			// the node. The ClusterIP has a ready endpoint elsewhere.
			name:   "Local LoadBalancer whose local endpoints are all terminating: they still serve, health check says 0",
			svcs:   []*corev1.Service{loadBalancer("lb", etpLocal(), healthCheckNodePort(32000))},
			slices: []*discoveryv1.EndpointSlice{lbSlice(ep("198.18.128.1", local(), servingTerminating()), ep("198.18.128.2"))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr extLocal -> 198.18.128.1:8080*",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> 198.18.128.2:8080",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr extLocal -> 198.18.128.1:8080*",
			},
			wantHC: []string{"ns/lb :32000 local=0"},
		},
		{
			name: "Local policy falls back to local serving-terminating endpoints only, never remote ones",
			svcs: []*corev1.Service{loadBalancer("lb", etpLocal(), healthCheckNodePort(32000))},
			slices: []*discoveryv1.EndpointSlice{lbSlice(
				ep("198.18.128.1", local(), notServingTerminating()), ep("198.18.128.2", servingTerminating()))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr extLocal -> none",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> 198.18.128.2:8080",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr extLocal -> none",
			},
			wantHC: []string{"ns/lb :32000 local=0"},
		},
		{
			name:   "Local LoadBalancer without healthCheckNodePort: no health check",
			svcs:   []*corev1.Service{loadBalancer("lb", etpLocal())},
			slices: []*discoveryv1.EndpointSlice{lbSlice(ep("198.18.128.1", local()))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr extLocal localEps -> 198.18.128.1:8080*",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr localEps -> 198.18.128.1:8080*",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr extLocal localEps -> 198.18.128.1:8080*",
			},
		},
		{
			name:   "Cluster LoadBalancer with a leftover healthCheckNodePort: no health check",
			svcs:   []*corev1.Service{loadBalancer("lb", healthCheckNodePort(32000))},
			slices: []*discoveryv1.EndpointSlice{lbSlice(ep("198.18.128.1", local()))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr localEps -> 198.18.128.1:8080*",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr localEps -> 198.18.128.1:8080*",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr localEps -> 198.18.128.1:8080*",
			},
		},
		{
			name: "health checks of several Services, sorted by port",
			svcs: []*corev1.Service{
				loadBalancer("lb", etpLocal(), healthCheckNodePort(32001)),
				service("lb2", svcType(corev1.ServiceTypeLoadBalancer), clusterIPs("198.19.0.11"), ports(sp("http", tcp, 80, 30081)),
					etpLocal(), healthCheckNodePort(32000)),
			},
			slices: []*discoveryv1.EndpointSlice{
				lbSlice(ep("198.18.128.1", local())),
				v4Slice("lb2", "lb2-1", httpPorts, ep("198.18.128.2", local()), ep("198.18.128.3", local())),
			},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr extLocal localEps -> 198.18.128.1:8080*",
				"198.18.0.1:30081/TCP NodePort ns/lb2:http rr extLocal localEps -> 198.18.128.2:8080* 198.18.128.3:8080*",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr localEps -> 198.18.128.1:8080*",
				"198.19.0.11:80/TCP ClusterIP ns/lb2:http rr localEps -> 198.18.128.2:8080* 198.18.128.3:8080*",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr extLocal localEps -> 198.18.128.1:8080*",
			},
			wantHC: []string{"ns/lb2 :32000 local=2", "ns/lb :32001 local=1"},
		},
	})
}

func TestInternalTrafficPolicy(t *testing.T) {
	mixed := []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1", local()), ep("198.18.128.2"))}
	runTable(t, []tcase{
		{
			name:   "Cluster (explicit): every ready endpoint",
			svcs:   []*corev1.Service{web(itp(corev1.ServiceInternalTrafficPolicyCluster))},
			slices: mixed,
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080"},
		},
		{
			name:   "Local: the ClusterIP uses endpoints on this node only",
			svcs:   []*corev1.Service{web(itp(corev1.ServiceInternalTrafficPolicyLocal))},
			slices: mixed,
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080*"},
		},
		{
			// Docs: "the Service behaves as if it has zero endpoints (for
			// Pods on this node), even if the Service does have endpoints on
			// other nodes."
			name:   "Local without a local endpoint: the ClusterIP has no real server",
			svcs:   []*corev1.Service{web(itp(corev1.ServiceInternalTrafficPolicyLocal))},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.2"))},
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		},
		{
			name:   "Local leaves NodePort and externalIP VIPs alone",
			svcs:   []*corev1.Service{webNP(itp(corev1.ServiceInternalTrafficPolicyLocal), externalIPs("198.19.1.1"))},
			slices: mixed,
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080*",
				"198.19.1.1:80/TCP ExternalIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080",
			},
		},
		{
			name:   "internal and external policy both Local",
			svcs:   []*corev1.Service{webNP(itp(corev1.ServiceInternalTrafficPolicyLocal), etpLocal())},
			slices: mixed,
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr extLocal localEps -> 198.18.128.1:8080*",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080*",
			},
		},
		{
			name: "Local with the local endpoint terminating: it still serves although remote ones are ready (KEP-1669)",
			svcs: []*corev1.Service{web(itp(corev1.ServiceInternalTrafficPolicyLocal))},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local(), servingTerminating()), ep("198.18.128.2"))},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080*"},
		},
		{
			name: "Local prefers ready local endpoints over terminating local ones",
			svcs: []*corev1.Service{web(itp(corev1.ServiceInternalTrafficPolicyLocal))},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local(), servingTerminating()), ep("198.18.128.3", local()))},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.3:8080*"},
		},
	})
}

func TestLoadBalancerSourceRanges(t *testing.T) {
	one := []*discoveryv1.EndpointSlice{lbSlice(ep("198.18.128.1"))}
	const (
		np  = "198.18.0.1:30080/TCP NodePort ns/lb:http rr -> 198.18.128.1:8080"
		cip = "198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> 198.18.128.1:8080"
		lbv = "198.19.2.10:80/TCP LoadBalancer ns/lb:http rr "
	)
	runTable(t, []tcase{
		{
			name:   "no ranges: anyone may connect",
			svcs:   []*corev1.Service{loadBalancer("lb")},
			slices: one,
			want:   []string{np, cip, lbv + "-> 198.18.128.1:8080"},
		},
		{
			name:   "spec.loadBalancerSourceRanges restrict the LoadBalancer VIPs only",
			svcs:   []*corev1.Service{loadBalancer("lb", lbSourceRanges("198.18.64.0/18", "2001:db8:ff::/48"), externalIPs("198.19.1.1"))},
			slices: one,
			want: []string{np, cip, "198.19.1.1:80/TCP ExternalIP ns/lb:http rr -> 198.18.128.1:8080",
				lbv + "restricted=198.18.64.0/18,2001:db8:ff::/48 -> 198.18.128.1:8080"},
		},
		{
			name:   "ranges are trimmed and their host bits cleared",
			svcs:   []*corev1.Service{loadBalancer("lb", lbSourceRanges(" 198.18.64.7/18 ", "198.18.5.5/32"))},
			slices: one,
			want:   []string{np, cip, lbv + "restricted=198.18.64.0/18,198.18.5.5/32 -> 198.18.128.1:8080"},
		},
		{
			name:   "the older annotation, comma separated, when the field is empty",
			svcs:   []*corev1.Service{loadBalancer("lb", annotate(sourceRangesAnnotation, "198.18.64.0/18, 198.18.32.0/19"))},
			slices: one,
			want:   []string{np, cip, lbv + "restricted=198.18.64.0/18,198.18.32.0/19 -> 198.18.128.1:8080"},
		},
		{
			name: "the field wins over the annotation",
			svcs: []*corev1.Service{loadBalancer("lb", lbSourceRanges("198.18.64.0/18"),
				annotate(sourceRangesAnnotation, "198.18.32.0/19"))},
			slices: one,
			want:   []string{np, cip, lbv + "restricted=198.18.64.0/18 -> 198.18.128.1:8080"},
		},
		{
			name:         "invalid ranges are reported and dropped; the VIP stays restricted to the valid ones",
			svcs:         []*corev1.Service{loadBalancer("lb", lbSourceRanges("198.18.64.0/18", "not-a-cidr", "198.18.0.0/33", "198.18.0.1"))},
			slices:       one,
			want:         []string{np, cip, lbv + "restricted=198.18.64.0/18 -> 198.18.128.1:8080"},
			wantProblems: []string{"Service ns/lb InvalidSourceRange", "Service ns/lb InvalidSourceRange", "Service ns/lb InvalidSourceRange"},
		},
		{
			// Dropping a bad range narrows who may connect; it never opens
			// the VIP to everyone.
			name:         "only invalid ranges: restricted to nobody",
			svcs:         []*corev1.Service{loadBalancer("lb", annotate(sourceRangesAnnotation, "everyone"))},
			slices:       one,
			want:         []string{np, cip, lbv + "restricted= -> 198.18.128.1:8080"},
			wantProblems: []string{"Service ns/lb InvalidSourceRange"},
		},
		{
			name:   "every LoadBalancer VIP of the Service carries the ranges",
			svcs:   []*corev1.Service{loadBalancer("lb", lbSourceRanges("198.18.64.0/18"), ingress(ingIP("198.19.2.11")))},
			slices: one,
			want: []string{np, cip,
				lbv + "restricted=198.18.64.0/18 -> 198.18.128.1:8080",
				"198.19.2.11:80/TCP LoadBalancer ns/lb:http rr restricted=198.18.64.0/18 -> 198.18.128.1:8080"},
		},
	})
}
