package desired

// Bad input is reported as a Problem naming the object, skipped, and
// everything else is still computed (DESIGN.md: "the object is skipped,
// everything else keeps working. No panic reaches main."). Conflicts between
// Services are settled by namespace/name, whatever the informer's order.

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestBadInput(t *testing.T) {
	one := []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1"))}
	good := service("api", clusterIPs("198.19.0.2"), ports(sp("http", tcp, 80, 0)))
	const goodVS = "198.19.0.2:80/TCP ClusterIP ns/api:http rr -> none"

	runTable(t, []tcase{
		{
			name:         "malformed clusterIP: that VIP is skipped, the Service's externalIP and other Services are not",
			svcs:         []*corev1.Service{web(clusterIPs("198.19.0.256"), externalIPs("198.19.1.1")), good},
			slices:       one,
			want:         []string{goodVS, "198.19.1.1:80/TCP ExternalIP ns/web:http rr -> 198.18.128.1:8080"},
			wantProblems: []string{"Service ns/web InvalidIP"},
		},
		{
			name:         "one malformed family of a dual-stack Service: the other family still works",
			svcs:         []*corev1.Service{web(clusterIPs("198.19.0.1", "2001:db8:19::zz"))},
			slices:       one,
			want:         []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
			wantProblems: []string{"Service ns/web InvalidIP"},
		},
		{
			name:         "unspecified clusterIP is not an address",
			svcs:         []*corev1.Service{web(clusterIPs("0.0.0.0")), good},
			want:         []string{goodVS},
			wantProblems: []string{"Service ns/web InvalidIP"},
		},
		{
			name:         "malformed, zoned and unspecified externalIPs are skipped, the good one kept",
			svcs:         []*corev1.Service{web(clusterIPs("2001:db8:19::1"), externalIPs("2001:db8:19:1::1", "fe80::1%eth0", "::", "2001:db8:19:1::g"))},
			want:         []string{"[2001:db8:19::1]:80/TCP ClusterIP ns/web:http rr -> none", "[2001:db8:19:1::1]:80/TCP ExternalIP ns/web:http rr -> none"},
			wantProblems: []string{"Service ns/web InvalidIP", "Service ns/web InvalidIP", "Service ns/web InvalidIP"},
		},
		{
			name: "malformed load balancer ingress IP is skipped, the good one kept",
			svcs: []*corev1.Service{loadBalancer("lb", noLBNodePorts(), func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 0 },
				ingress(ingIP("198.19.2.300")))},
			want: []string{
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> none",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr -> none",
			},
			wantProblems: []string{"Service ns/lb InvalidIP"},
		},
		{
			// kube-proxy drops externalIPs and VIP-mode ingress IPs whose
			// family the Service does not have: nobody can serve them.
			name: "externalIP and ingress IP of a family the Service does not have",
			svcs: []*corev1.Service{loadBalancer("lb", externalIPs("2001:db8:19:1::1", "198.19.1.1"),
				ingress(ingIP("2001:db8:19:2::1"), ingMode("2001:db8:19:2::2", corev1.LoadBalancerIPModeProxy)))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr -> none",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> none",
				"198.19.1.1:80/TCP ExternalIP ns/lb:http rr -> none",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr -> none",
			},
			wantProblems: []string{"Service ns/lb IPFamilyMismatch", "Service ns/lb IPFamilyMismatch"},
		},
		{
			name: "Service port out of range: that port is skipped, the others kept",
			svcs: []*corev1.Service{service("web", clusterIPs("198.19.0.1"),
				ports(sp("zero", tcp, 0, 0), sp("http", tcp, 80, 0), sp("big", tcp, 65536, 0), sp("neg", tcp, -80, 0)))},
			slices:       one,
			want:         []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
			wantProblems: []string{"Service ns/web InvalidPort", "Service ns/web InvalidPort", "Service ns/web InvalidPort"},
		},
		{
			name: "nodePort out of range: no NodePort for that port, its ClusterIP and the other ports stay",
			svcs: []*corev1.Service{service("web", svcType(corev1.ServiceTypeNodePort), clusterIPs("198.19.0.1"),
				ports(sp("http", tcp, 80, 70000), sp("https", tcp, 443, -1), sp("alt", tcp, 8000, 30800)))},
			want: []string{
				"198.18.0.1:30800/TCP NodePort ns/web:alt rr -> none",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none",
				"198.19.0.1:443/TCP ClusterIP ns/web:https rr -> none",
				"198.19.0.1:8000/TCP ClusterIP ns/web:alt rr -> none",
			},
			wantProblems: []string{"Service ns/web InvalidPort", "Service ns/web InvalidPort"},
		},
		{
			name: "unknown protocol (and protocol names are case-sensitive)",
			svcs: []*corev1.Service{service("web", clusterIPs("198.19.0.1"),
				ports(sp("ping", "ICMP", 1, 0), sp("lower", "tcp", 81, 0), sp("http", tcp, 80, 0)))},
			slices:       one,
			want:         []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
			wantProblems: []string{"Service ns/web InvalidProtocol", "Service ns/web InvalidProtocol"},
		},
		{
			name: "healthCheckNodePort out of range: no health check, the VIPs stay",
			svcs: []*corev1.Service{
				loadBalancer("lb", etpLocal(), healthCheckNodePort(70000)),
				service("lb2", svcType(corev1.ServiceTypeLoadBalancer), clusterIPs("198.19.0.11"), ports(sp("http", tcp, 80, 0)),
					noLBNodePorts(), etpLocal(), healthCheckNodePort(-5)),
			},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr extLocal -> none",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> none",
				"198.19.0.11:80/TCP ClusterIP ns/lb2:http rr -> none",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr extLocal -> none",
			},
			wantProblems: []string{"Service ns/lb InvalidPort", "Service ns/lb2 InvalidPort"},
		},
		{
			name: "malformed endpoint address: reported on the slice, the slice's other endpoints used",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1"), ep("198.18.128.x"), ep("198.18.128.2")),
			},
			want:         []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080 198.18.128.2:8080"},
			wantProblems: []string{"EndpointSlice ns/web-1 InvalidEndpoint"},
		},
		{
			name: "IPv6 address in an IPv4 slice",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("2001:db8:18:128::1"), ep("198.18.128.2")),
			},
			want:         []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.2:8080"},
			wantProblems: []string{"EndpointSlice ns/web-1 InvalidEndpoint"},
		},
		{
			// The API server's validation rejects an IPv4-mapped address in
			// an IPv6 slice, it is not an IPv6 endpoint.
			name: "IPv4, IPv4-mapped and zoned addresses in an IPv6 slice",
			svcs: []*corev1.Service{web(clusterIPs("2001:db8:19::1"))},
			slices: []*discoveryv1.EndpointSlice{
				webSlice6("web-v6-1", ep("198.18.128.1"), ep("2001:db8:18:128::1")),
				webSlice6("web-v6-2", ep("::ffff:198.18.128.2")),
				webSlice6("web-v6-3", ep("fe80::1%eth0")),
			},
			want: []string{"[2001:db8:19::1]:80/TCP ClusterIP ns/web:http rr -> [2001:db8:18:128::1]:8080"},
			wantProblems: []string{
				"EndpointSlice ns/web-v6-1 InvalidEndpoint",
				"EndpointSlice ns/web-v6-2 InvalidEndpoint",
				"EndpointSlice ns/web-v6-3 InvalidEndpoint",
			},
		},
		{
			name: "a bad endpoint is reported once, however many ports and VIPs use its slice",
			svcs: []*corev1.Service{service("web", svcType(corev1.ServiceTypeNodePort), clusterIPs("198.19.0.1"),
				ports(sp("http", tcp, 80, 30080), sp("https", tcp, 443, 30443)))},
			slices: []*discoveryv1.EndpointSlice{v4Slice("web", "web-1", eps(epp("http", tcp, 8080), epp("https", tcp, 8443)),
				ep("bogus"), ep("198.18.128.1"))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr -> 198.18.128.1:8080",
				"198.18.0.1:30443/TCP NodePort ns/web:https rr -> 198.18.128.1:8443",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"198.19.0.1:443/TCP ClusterIP ns/web:https rr -> 198.18.128.1:8443",
			},
			wantProblems: []string{"EndpointSlice ns/web-1 InvalidEndpoint"},
		},
		{
			name: "several problems in one Service: each reported, the rest computed",
			svcs: []*corev1.Service{service("web", svcType(corev1.ServiceTypeLoadBalancer), clusterIPs("198.19.0.1"),
				annotate(SchedulerAnnotation, "fastest"), lbSourceRanges("nope"), externalIPs("198.19.1.x"),
				ports(sp("http", tcp, 80, 30080), sp("bad", "HTTP", 81, 30081)), ingress(ingIP("198.19.2.1")))},
			slices: one,
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr -> 198.18.128.1:8080",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"198.19.2.1:80/TCP LoadBalancer ns/web:http rr restricted= -> 198.18.128.1:8080",
			},
			wantProblems: []string{
				"Service ns/web InvalidScheduler", "Service ns/web InvalidIP",
				"Service ns/web InvalidSourceRange", "Service ns/web InvalidProtocol",
			},
		},
	})
}

func TestConflicts(t *testing.T) {
	runTable(t, []tcase{
		{
			name: "same ClusterIP:port/protocol in two Services: the first by namespace/name keeps it",
			svcs: []*corev1.Service{
				service("beta", clusterIPs("198.19.0.1"), ports(sp("http", tcp, 80, 0), sp("https", tcp, 443, 0))),
				service("alpha", clusterIPs("198.19.0.1"), ports(sp("http", tcp, 80, 0))),
			},
			slices: []*discoveryv1.EndpointSlice{
				v4Slice("alpha", "alpha-1", httpPorts, ep("198.18.128.1")),
				v4Slice("beta", "beta-1", eps(epp("http", tcp, 8080), epp("https", tcp, 8443)), ep("198.18.128.2")),
			},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/alpha:http rr -> 198.18.128.1:8080",
				"198.19.0.1:443/TCP ClusterIP ns/beta:https rr -> 198.18.128.2:8443",
			},
			wantProblems: []string{"Service ns/beta DuplicateVIP"},
		},
		{
			name: "namespace orders before name",
			svcs: []*corev1.Service{
				service("aaa", func(s *corev1.Service) { s.Namespace = "team-b" }, clusterIPs("198.19.0.1"), ports(sp("http", tcp, 80, 0))),
				service("zzz", func(s *corev1.Service) { s.Namespace = "team-a" }, clusterIPs("198.19.0.1"), ports(sp("http", tcp, 80, 0))),
			},
			want:         []string{"198.19.0.1:80/TCP ClusterIP team-a/zzz:http rr -> none"},
			wantProblems: []string{"Service team-b/aaa DuplicateVIP"},
		},
		{
			name: "same address and port under another protocol is no conflict",
			svcs: []*corev1.Service{
				service("alpha", clusterIPs("198.19.0.1"), ports(sp("dns", udp, 53, 0))),
				service("beta", clusterIPs("198.19.0.1"), ports(sp("dns", tcp, 53, 0))),
			},
			want: []string{
				"198.19.0.1:53/TCP ClusterIP ns/beta:dns rr -> none",
				"198.19.0.1:53/UDP ClusterIP ns/alpha:dns rr -> none",
			},
		},
		{
			name: "an externalIP equal to another Service's ClusterIP",
			svcs: []*corev1.Service{
				service("beta", clusterIPs("198.19.0.2"), ports(sp("http", tcp, 80, 0))),
				service("alpha", clusterIPs("198.19.0.1"), ports(sp("http", tcp, 80, 0)), externalIPs("198.19.0.2")),
			},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/alpha:http rr -> none",
				"198.19.0.2:80/TCP ExternalIP ns/alpha:http rr -> none",
			},
			wantProblems: []string{"Service ns/beta DuplicateVIP"},
		},
		{
			name: "one nodePort in two Services",
			node: ptr(dualNode()),
			svcs: []*corev1.Service{
				service("beta", svcType(corev1.ServiceTypeNodePort), clusterIPs("198.19.0.2", "2001:db8:19::2"), ports(sp("http", tcp, 80, 30080))),
				service("alpha", svcType(corev1.ServiceTypeNodePort), clusterIPs("198.19.0.1", "2001:db8:19::1"), ports(sp("http", tcp, 80, 30080))),
			},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/alpha:http rr -> none",
				"198.19.0.1:80/TCP ClusterIP ns/alpha:http rr -> none",
				"198.19.0.2:80/TCP ClusterIP ns/beta:http rr -> none",
				"[2001:db8:18::1]:30080/TCP NodePort ns/alpha:http rr -> none",
				"[2001:db8:19::1]:80/TCP ClusterIP ns/alpha:http rr -> none",
				"[2001:db8:19::2]:80/TCP ClusterIP ns/beta:http rr -> none",
			},
			wantProblems: []string{"Service ns/beta DuplicateVIP", "Service ns/beta DuplicateVIP"},
		},
		{
			name: "one healthCheckNodePort in two Services: the first keeps it",
			svcs: []*corev1.Service{
				loadBalancer("lb2", clusterIPs("198.19.0.11"), func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30081; s.Status = corev1.ServiceStatus{} },
					etpLocal(), healthCheckNodePort(32000)),
				loadBalancer("lb", etpLocal(), healthCheckNodePort(32000), func(s *corev1.Service) { s.Status = corev1.ServiceStatus{} }),
			},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr extLocal -> none",
				"198.18.0.1:30081/TCP NodePort ns/lb2:http rr extLocal -> none",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> none",
				"198.19.0.11:80/TCP ClusterIP ns/lb2:http rr -> none",
			},
			wantHC:       []string{"ns/lb :32000 local=0"},
			wantProblems: []string{"Service ns/lb2 DuplicateHealthCheckPort"},
		},
	})
}

// TestProblemDetails checks the whole Problem for a few cases: kind, the
// object to put an event on, reason and a message naming the culprit.
func TestProblemDetails(t *testing.T) {
	in := Input{
		Services: []*corev1.Service{web(externalIPs("198.19.1.x"), annotate(SchedulerAnnotation, "fastest"))},
		Slices: groupSlices([]*discoveryv1.EndpointSlice{
			webSlice("web-abc12", ep("198.18.128.x")),
		}),
		Node: v4Node(),
	}
	_, problems := computeChecked(t, in, Config{})
	want := []struct {
		p       Problem
		mention string
	}{
		{Problem{Kind: "Service", Object: types.NamespacedName{Namespace: testNS, Name: "web"}, Reason: "InvalidScheduler"}, "fastest"},
		{Problem{Kind: "Service", Object: types.NamespacedName{Namespace: testNS, Name: "web"}, Reason: "InvalidIP"}, "198.19.1.x"},
		{Problem{Kind: "EndpointSlice", Object: types.NamespacedName{Namespace: testNS, Name: "web-abc12"}, Reason: "InvalidEndpoint"}, "198.18.128.x"},
	}
	if len(problems) != len(want) {
		t.Fatalf("got %d problems, want %d: %+v", len(problems), len(want), problems)
	}
	for i, w := range want {
		got := problems[i]
		if got.Kind != w.p.Kind || got.Object != w.p.Object || got.Reason != w.p.Reason {
			t.Errorf("problem %d = %+v, want %+v", i, got, w.p)
		}
		if !strings.Contains(got.Message, w.mention) {
			t.Errorf("problem %d message %q does not mention %q", i, got.Message, w.mention)
		}
	}
}

// TestOddObjectsDoNotPanic feeds objects no API server would hand out.
func TestOddObjectsDoNotPanic(t *testing.T) {
	odd := []*corev1.Service{
		nil,
		{},
		{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "no-spec"}},
		service("affinity-without-config", clusterIPs("198.19.0.20"), ports(sp("p", tcp, 80, 0)), func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{}
		}),
		service("negative-timeout", clusterIPs("198.19.0.21"), ports(sp("p", tcp, 80, 0)), clientIPAffinity(ptr(int32(-1)))),
		service("empty-clusterips", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{""} }, ports(sp("p", tcp, 80, 0))),
		service("lb-empty-ingress", svcType(corev1.ServiceTypeLoadBalancer), clusterIPs("198.19.0.22"), ports(sp("p", tcp, 80, 0)),
			ingress(corev1.LoadBalancerIngress{})),
		service("td-empty", clusterIPs("198.19.0.23"), ports(sp("p", tcp, 80, 0)), trafficDistribution("")),
		service("odd-slices", clusterIPs("198.19.0.24"), ports(sp("p", tcp, 80, 0))),
	}
	name := types.NamespacedName{Namespace: testNS, Name: "odd-slices"}
	in := Input{
		Services: odd,
		Slices: map[types.NamespacedName][]*discoveryv1.EndpointSlice{name: {
			nil,
			{},
			{AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{}}, Endpoints: []discoveryv1.Endpoint{{}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: "odd-1"}, AddressType: discoveryv1.AddressTypeIPv4,
				Ports: []discoveryv1.EndpointPort{{Name: ptr("p"), Port: ptr(int32(70000))}, {Name: ptr("p"), Port: ptr(int32(8080))}},
				Endpoints: []discoveryv1.Endpoint{
					{Addresses: []string{""}},
					{Addresses: []string{"198.18.128.1"}, Hints: &discoveryv1.EndpointHints{}},
					{Addresses: []string{"198.18.128.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(false)}},
				}},
		}},
		Node: Node{IPs: []netip.Addr{{}, netip.MustParseAddr("198.18.0.1")}},
	}
	st, problems := Compute(in, Config{})
	got := render(st)
	want := []string{
		"198.19.0.20:80/TCP ClusterIP ns/affinity-without-config:p rr persist=10800 -> none",
		"198.19.0.21:80/TCP ClusterIP ns/negative-timeout:p rr persist=10800 -> none",
		"198.19.0.22:80/TCP ClusterIP ns/lb-empty-ingress:p rr -> none",
		"198.19.0.23:80/TCP ClusterIP ns/td-empty:p rr -> none",
		"198.19.0.24:80/TCP ClusterIP ns/odd-slices:p rr -> 198.18.128.1:8080",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if pk := problemKeys(problems); strings.Join(pk, ";") != "Service ns/empty-clusterips InvalidIP;EndpointSlice ns/odd-1 InvalidEndpoint" {
		t.Errorf("problems %q", pk)
	}
	if r := ComputeService(nil, nil, Node{}, Config{}); len(r.Services) != 0 || r.HealthCheck != nil || len(r.Problems) != 0 {
		t.Errorf("ComputeService(nil) = %+v", r)
	}
}
