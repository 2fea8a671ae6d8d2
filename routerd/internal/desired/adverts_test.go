package desired

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/nodenet/nodenet/routerd/internal/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func prefixes(as []model.Advertisement) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Prefix.String())
	}
	return out
}

func TestAdvertisementsFromProxyd(t *testing.T) {
	vips := []VIP{
		{Addr: addr("198.19.0.1"), Kind: ClusterIP, Service: "a/web"},
		{Addr: addr("198.19.0.1"), Kind: ClusterIP, Service: "a/web"}, // a second port
		{Addr: addr("198.19.0.2"), Kind: ClusterIP, ExternalTrafficLocal: true, Service: "a/local"},
		{Addr: addr("198.19.1.1"), Kind: ExternalIP, Service: "a/web"},
		{Addr: addr("198.19.1.2"), Kind: ExternalIP, ExternalTrafficLocal: true, Service: "a/local"},
		{Addr: addr("198.19.1.3"), Kind: ExternalIP, ExternalTrafficLocal: true, LocalEndpoints: true, Service: "a/here"},
		{Addr: addr("198.19.2.1"), Kind: LoadBalancerIP, ExternalTrafficLocal: true, Service: "a/local"},
		{Addr: addr("198.19.2.2"), Kind: LoadBalancerIP, ExternalTrafficLocal: true, LocalEndpoints: true, Service: "a/here"},
		{Addr: addr("2001:2::1"), Kind: ClusterIP, Service: "a/v6"},
	}
	pods := []netip.Prefix{prefix("198.18.128.0/24"), prefix("2001:2:1::/64")}
	for _, tc := range []struct {
		name             string
		cluster, ext, lb bool
		want             []string
	}{
		{"pod CIDRs only", false, false, false, []string{"198.18.128.0/24", "2001:2:1::/64"}},
		{"cluster IPs", true, false, false, []string{"198.18.128.0/24", "198.19.0.1/32", "198.19.0.2/32", "2001:2::1/128", "2001:2:1::/64"}},
		{"external IPs: ETP Local only with local endpoints", false, true, false, []string{"198.18.128.0/24", "198.19.1.1/32", "198.19.1.3/32", "2001:2:1::/64"}},
		{"load-balancer IPs", false, false, true, []string{"198.18.128.0/24", "198.19.2.2/32", "2001:2:1::/64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := Advertisements(AdvertInput{PodCIDRs: pods, ClusterIPs: tc.cluster, ExternalIPs: tc.ext, LoadBalancerIPs: tc.lb, UseProxyd: true, ProxydVIPs: vips})
			if !slices.Equal(prefixes(got), tc.want) {
				t.Errorf("advertised %q, want %q", prefixes(got), tc.want)
			}
		})
	}
}

func TestAdvertisementsFallbackFromAPI(t *testing.T) {
	svc := func(name string, typ corev1.ServiceType, etp corev1.ServiceExternalTrafficPolicy, clusterIP string, external []string, lb ...string) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: name, Labels: map[string]string{}},
			Spec: corev1.ServiceSpec{Type: typ, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP}, ExternalIPs: external, ExternalTrafficPolicy: etp}}
		for _, ip := range lb {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
		return s
	}
	other := svc("other-proxy", corev1.ServiceTypeClusterIP, "", "198.19.0.9", nil)
	other.Labels[serviceProxyName] = "someone-else"
	services := []*corev1.Service{
		svc("web", corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyCluster, "198.19.0.1", []string{"198.19.1.1", "bad"}, "198.19.2.1"),
		svc("local", corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, "198.19.0.2", []string{"198.19.1.2"}, "198.19.2.2"),
		svc("here", corev1.ServiceTypeLoadBalancer, corev1.ServiceExternalTrafficPolicyLocal, "198.19.0.3", nil, "198.19.2.3"),
		svc("headless", corev1.ServiceTypeClusterIP, "", corev1.ClusterIPNone, nil),
		svc("lb-ip-on-clusterip", corev1.ServiceTypeClusterIP, "", "198.19.0.4", nil, "198.19.2.4"),
		other,
	}
	me, elsewhere := "n0", "n1"
	notReady := false
	eps := []*discoveryv1.EndpointSlice{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "here-1", Labels: map[string]string{discoveryv1.LabelServiceName: "here"}},
			Endpoints: []discoveryv1.Endpoint{{NodeName: &elsewhere}, {NodeName: &me}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "local-1", Labels: map[string]string{discoveryv1.LabelServiceName: "local"}},
			Endpoints: []discoveryv1.Endpoint{{NodeName: &elsewhere}, {NodeName: &me, Conditions: discoveryv1.EndpointConditions{Ready: &notReady}}}},
	}
	got, problems := Advertisements(AdvertInput{PodCIDRs: []netip.Prefix{prefix("198.18.128.0/24")}, ClusterIPs: true, ExternalIPs: true, LoadBalancerIPs: true,
		Services: services, Slices: eps, Node: me})
	want := []string{"198.18.128.0/24", "198.19.0.1/32", "198.19.0.2/32", "198.19.0.3/32", "198.19.0.4/32", "198.19.1.1/32", "198.19.2.1/32", "198.19.2.3/32"}
	if !slices.Equal(prefixes(got), want) {
		t.Errorf("advertised %q, want %q", prefixes(got), want)
	}
	if r := reasons(problems); len(r) != 1 || r[0] != "web:"+ReasonBadService {
		t.Errorf("problems %q", r)
	}
}
