package desired

// Which addresses of a Service become IPVS virtual services
// (kubernetes.io/docs/concepts/services-networking/service/, the Service API
// reference, dual-stack and ipMode / KEP-1860), with which scheduler and
// persistence, and what happens when a Service changes type.

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

const (
	tcp  = corev1.ProtocolTCP
	udp  = corev1.ProtocolUDP
	sctp = corev1.ProtocolSCTP
)

// web is a ClusterIP Service 198.19.0.1 with port "http" TCP 80.
func web(mods ...svcMod) *corev1.Service {
	return service("web", append([]svcMod{clusterIPs("198.19.0.1"), ports(sp("http", tcp, 80, 0))}, mods...)...)
}

// webNP is web as a NodePort Service, nodePort 30080.
func webNP(mods ...svcMod) *corev1.Service {
	return service("web", append([]svcMod{svcType(corev1.ServiceTypeNodePort), clusterIPs("198.19.0.1"), ports(sp("http", tcp, 80, 30080))}, mods...)...)
}

// httpPorts is the slice port of web's "http": TCP 8080.
var httpPorts = eps(epp("http", tcp, 8080))

// webSlice is an IPv4 slice of web with port http→8080.
func webSlice(name string, e ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return v4Slice("web", name, httpPorts, e...)
}

func webSlice6(name string, e ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return v6Slice("web", name, httpPorts, e...)
}

func TestVIPs(t *testing.T) {
	dual := dualNode()
	bare := v4Node()
	bare.IPs = nil
	messy := v4Node()
	messy.IPs = []netip.Addr{
		netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("::ffff:198.18.0.1"), netip.MustParseAddr("198.18.0.1"),
		netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::"), {}, netip.MustParseAddr("fe80::1%eth0"),
	}
	lbFamilies := service("lb", svcType(corev1.ServiceTypeLoadBalancer), clusterIPs("198.19.0.10", "2001:db8:19::10"),
		ports(sp("http", tcp, 80, 0)), noLBNodePorts(), ingress(ingIP("198.19.2.10"), ingIP("2001:db8:19:2::10")))

	runTable(t, []tcase{
		{
			name:   "ClusterIP: each ready endpoint is a real server, round robin, sorted",
			svcs:   []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.2"), ep("198.18.128.1"))},
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080 198.18.128.2:8080"},
		},
		{
			name: "ClusterIP without any EndpointSlice still gets its virtual service",
			svcs: []*corev1.Service{web()},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		},
		{
			name: "dual-stack: every clusterIPs entry, each served by slices of its own family",
			svcs: []*corev1.Service{web(clusterIPs("198.19.0.1", "2001:db8:19::1"))},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-v4", ep("198.18.128.1")),
				webSlice6("web-v6", ep("2001:db8:18:128::1"), ep("2001:db8:18:128::2")),
			},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"[2001:db8:19::1]:80/TCP ClusterIP ns/web:http rr -> [2001:db8:18:128::1]:8080 [2001:db8:18:128::2]:8080",
			},
		},
		{
			name: "dual-stack with IPv6 as primary family",
			svcs: []*corev1.Service{web(clusterIPs("2001:db8:19::1", "198.19.0.1"))},
			slices: []*discoveryv1.EndpointSlice{
				webSlice6("web-v6", ep("2001:db8:18:128::1")),
				webSlice("web-v4", ep("198.18.128.1")),
			},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"[2001:db8:19::1]:80/TCP ClusterIP ns/web:http rr -> [2001:db8:18:128::1]:8080",
			},
		},
		{
			name: "single-stack IPv6 ignores IPv4 slices",
			svcs: []*corev1.Service{web(clusterIPs("2001:db8:19::1"))},
			slices: []*discoveryv1.EndpointSlice{
				webSlice6("web-v6", ep("2001:db8:18:128::1")),
				webSlice("web-v4", ep("198.18.128.1")),
			},
			want: []string{"[2001:db8:19::1]:80/TCP ClusterIP ns/web:http rr -> [2001:db8:18:128::1]:8080"},
		},
		{
			name:   "clusterIP alone (no clusterIPs, as older objects have it)",
			svcs:   []*corev1.Service{web(func(s *corev1.Service) { s.Spec.ClusterIPs, s.Spec.IPFamilies = nil, nil })},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1"))},
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
		},
		{
			name:   "every externalIP is a virtual service with the same real servers",
			svcs:   []*corev1.Service{web(externalIPs("198.19.1.2", "198.19.1.1"))},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1"))},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"198.19.1.1:80/TCP ExternalIP ns/web:http rr -> 198.18.128.1:8080",
				"198.19.1.2:80/TCP ExternalIP ns/web:http rr -> 198.18.128.1:8080",
			},
		},
		{
			name:   "NodePort: the ClusterIP plus the nodePort on the node address",
			svcs:   []*corev1.Service{webNP()},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1"))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr -> 198.18.128.1:8080",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
			},
		},
		{
			name: "NodePort of a dual-stack Service on a dual-stack node: both node addresses, each with its family's endpoints",
			node: &dual,
			svcs: []*corev1.Service{webNP(clusterIPs("198.19.0.1", "2001:db8:19::1"))},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-v4", ep("198.18.128.1")),
				webSlice6("web-v6", ep("2001:db8:18:128::1")),
			},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr -> 198.18.128.1:8080",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"[2001:db8:18::1]:30080/TCP NodePort ns/web:http rr -> [2001:db8:18:128::1]:8080",
				"[2001:db8:19::1]:80/TCP ClusterIP ns/web:http rr -> [2001:db8:18:128::1]:8080",
			},
		},
		{
			// kube-proxy's IPv6 proxier does not know an IPv4-only Service.
			name:   "NodePort of a single-stack IPv4 Service on a dual-stack node: IPv4 node address only",
			node:   &dual,
			svcs:   []*corev1.Service{webNP()},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1"))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr -> 198.18.128.1:8080",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
			},
		},
		{
			name:   "NodePort of a single-stack IPv6 Service on a dual-stack node: IPv6 node address only",
			node:   &dual,
			svcs:   []*corev1.Service{webNP(clusterIPs("2001:db8:19::1"))},
			slices: []*discoveryv1.EndpointSlice{webSlice6("web-v6", ep("2001:db8:18:128::1"))},
			want: []string{
				"[2001:db8:18::1]:30080/TCP NodePort ns/web:http rr -> [2001:db8:18:128::1]:8080",
				"[2001:db8:19::1]:80/TCP ClusterIP ns/web:http rr -> [2001:db8:18:128::1]:8080",
			},
		},
		{
			name: "NodePort on a node without addresses: ClusterIP only",
			node: &bare,
			svcs: []*corev1.Service{webNP()},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		},
		{
			name: "node addresses: duplicates, IPv4-mapped, unspecified, invalid and zoned ones are not NodePort VIPs",
			node: &messy,
			svcs: []*corev1.Service{webNP()},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr -> none",
				"198.18.0.2:30080/TCP NodePort ns/web:http rr -> none",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none",
			},
		},
		{
			name: "nodePort on a ClusterIP Service (left over from a type change) is not served",
			svcs: []*corev1.Service{web(func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 })},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		},
		{
			// ipMode Proxy: the load balancer delivers to node IP/nodePort
			// itself; a hostname has no address to capture.
			name: "LoadBalancer: ClusterIP, NodePort and every VIP-mode ingress IP; Proxy mode and hostnames skipped",
			svcs: []*corev1.Service{loadBalancer("lb", ingress(
				ingMode("198.19.2.11", corev1.LoadBalancerIPModeVIP),
				ingMode("198.19.2.12", corev1.LoadBalancerIPModeProxy),
				ingHost("lb.example.test"),
			))},
			slices: []*discoveryv1.EndpointSlice{v4Slice("lb", "lb-1", httpPorts, ep("198.18.128.1"))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr -> 198.18.128.1:8080",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> 198.18.128.1:8080",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr -> 198.18.128.1:8080",
				"198.19.2.11:80/TCP LoadBalancer ns/lb:http rr -> 198.18.128.1:8080",
			},
		},
		{
			name: "LoadBalancer not yet provisioned (no ingress): ClusterIP and NodePort",
			svcs: []*corev1.Service{loadBalancer("lb", func(s *corev1.Service) { s.Status = corev1.ServiceStatus{} })},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/lb:http rr -> none",
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> none",
			},
		},
		{
			name: "LoadBalancer with allocateLoadBalancerNodePorts=false (nodePort 0): no NodePort",
			svcs: []*corev1.Service{service("lb", svcType(corev1.ServiceTypeLoadBalancer), clusterIPs("198.19.0.10"),
				ports(sp("http", tcp, 80, 0)), noLBNodePorts(), ingress(ingIP("198.19.2.10")))},
			slices: []*discoveryv1.EndpointSlice{v4Slice("lb", "lb-1", httpPorts, ep("198.18.128.1"))},
			want: []string{
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> 198.18.128.1:8080",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr -> 198.18.128.1:8080",
			},
		},
		{
			name: "dual-stack LoadBalancer: ingress IPs of both families",
			svcs: []*corev1.Service{lbFamilies},
			slices: []*discoveryv1.EndpointSlice{
				v4Slice("lb", "lb-v4", httpPorts, ep("198.18.128.1")),
				v6Slice("lb", "lb-v6", httpPorts, ep("2001:db8:18:128::1")),
			},
			want: []string{
				"198.19.0.10:80/TCP ClusterIP ns/lb:http rr -> 198.18.128.1:8080",
				"198.19.2.10:80/TCP LoadBalancer ns/lb:http rr -> 198.18.128.1:8080",
				"[2001:db8:19::10]:80/TCP ClusterIP ns/lb:http rr -> [2001:db8:18:128::1]:8080",
				"[2001:db8:19:2::10]:80/TCP LoadBalancer ns/lb:http rr -> [2001:db8:18:128::1]:8080",
			},
		},
		{
			name: "status.loadBalancer of a Service that is not type LoadBalancer is ignored",
			svcs: []*corev1.Service{web(ingress(ingIP("198.19.2.10")))},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		},
		{
			name: "TCP, UDP and SCTP; one port number under two protocols is two virtual services",
			svcs: []*corev1.Service{service("dns", clusterIPs("198.19.0.53"),
				ports(sp("dns", udp, 53, 0), sp("dns-tcp", tcp, 53, 0), sp("diameter", sctp, 3868, 0)))},
			slices: []*discoveryv1.EndpointSlice{v4Slice("dns", "dns-1",
				eps(epp("dns", udp, 5353), epp("dns-tcp", tcp, 5353), epp("diameter", sctp, 3869)),
				ep("198.18.128.1"))},
			want: []string{
				"198.19.0.53:53/TCP ClusterIP ns/dns:dns-tcp rr -> 198.18.128.1:5353",
				"198.19.0.53:53/UDP ClusterIP ns/dns:dns rr -> 198.18.128.1:5353",
				"198.19.0.53:3868/SCTP ClusterIP ns/dns:diameter rr -> 198.18.128.1:3869",
			},
		},
		{
			name: "protocol left empty means TCP, on the Service and on the slice",
			svcs: []*corev1.Service{service("web", clusterIPs("198.19.0.1"), ports(sp("", "", 80, 0)))},
			slices: []*discoveryv1.EndpointSlice{v4Slice("web", "web-1",
				eps(discoveryv1.EndpointPort{Port: ptr(int32(8080))}), ep("198.18.128.1"))},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web rr -> 198.18.128.1:8080"},
		},
		{
			name: "two named ports, each with its own target port",
			svcs: []*corev1.Service{service("web", clusterIPs("198.19.0.1"),
				ports(sp("http", tcp, 80, 0), sp("metrics", tcp, 9090, 0)))},
			slices: []*discoveryv1.EndpointSlice{v4Slice("web", "web-1",
				eps(epp("metrics", tcp, 9100), epp("http", tcp, 8080)),
				ep("198.18.128.1"), ep("198.18.128.2"))},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080 198.18.128.2:8080",
				"198.19.0.1:9090/TCP ClusterIP ns/web:metrics rr -> 198.18.128.1:9100 198.18.128.2:9100",
			},
		},
		{
			name: "two NodePort ports",
			svcs: []*corev1.Service{service("web", svcType(corev1.ServiceTypeNodePort), clusterIPs("198.19.0.1"),
				ports(sp("http", tcp, 80, 30080), sp("https", tcp, 443, 30443)))},
			slices: []*discoveryv1.EndpointSlice{v4Slice("web", "web-1",
				eps(epp("http", tcp, 8080), epp("https", tcp, 8443)), ep("198.18.128.1"))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr -> 198.18.128.1:8080",
				"198.18.0.1:30443/TCP NodePort ns/web:https rr -> 198.18.128.1:8443",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"198.19.0.1:443/TCP ClusterIP ns/web:https rr -> 198.18.128.1:8443",
			},
		},
		{
			name: "headless Service (clusterIP None) is not proxied, whatever else it has",
			svcs: []*corev1.Service{service("db", headless(), ports(sp("pg", tcp, 5432, 0)), externalIPs("198.19.1.1"))},
			slices: []*discoveryv1.EndpointSlice{v4Slice("db", "db-1", eps(epp("pg", tcp, 5432)),
				ep("198.18.128.1"))},
		},
		{
			name: "ExternalName Service is not proxied",
			svcs: []*corev1.Service{service("ext", svcType(corev1.ServiceTypeExternalName),
				func(s *corev1.Service) { s.Spec.ExternalName = "db.example.test" },
				ports(sp("pg", tcp, 5432, 0)), externalIPs("198.19.1.1"))},
		},
		{
			name: "Services are independent: each keeps its own VIPs and endpoints",
			svcs: []*corev1.Service{
				web(),
				service("api", clusterIPs("198.19.0.2"), ports(sp("http", tcp, 80, 0))),
			},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1")),
				v4Slice("api", "api-1", httpPorts, ep("198.18.128.9")),
			},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"198.19.0.2:80/TCP ClusterIP ns/api:http rr -> 198.18.128.9:8080",
			},
		},
		{
			name: "same name in two namespaces: two Services",
			svcs: []*corev1.Service{
				web(),
				service("web", func(s *corev1.Service) { s.Namespace = "other" }, clusterIPs("198.19.0.2"), ports(sp("http", tcp, 80, 0))),
			},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1")),
				func() *discoveryv1.EndpointSlice {
					sl := webSlice("web-1", ep("198.18.129.1"))
					sl.Namespace = "other"
					return sl
				}(),
			},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"198.19.0.2:80/TCP ClusterIP other/web:http rr -> 198.18.129.1:8080",
			},
		},
	})
}

func TestSchedulerAndAffinity(t *testing.T) {
	one := []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1"))}
	var cases []tcase
	for _, s := range []string{"rr", "wrr", "lc", "wlc", "sh", "dh", "mh", "sed", "nq"} {
		cases = append(cases, tcase{
			name:   "annotation " + s,
			svcs:   []*corev1.Service{web(annotate(SchedulerAnnotation, s))},
			slices: one,
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http " + s + " -> 198.18.128.1:8080"},
		})
	}
	cases = append(cases, []tcase{
		{
			name:   "annotation value is trimmed and case-folded",
			svcs:   []*corev1.Service{web(annotate(SchedulerAnnotation, " WLC "))},
			slices: one,
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http wlc -> 198.18.128.1:8080"},
		},
		{
			name:         "unknown scheduler: Problem, round robin",
			svcs:         []*corev1.Service{web(annotate(SchedulerAnnotation, "fastest"))},
			slices:       one,
			want:         []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
			wantProblems: []string{"Service ns/web InvalidScheduler"},
		},
		{
			name:         "empty annotation is not a scheduler either",
			svcs:         []*corev1.Service{web(annotate(SchedulerAnnotation, ""))},
			want:         []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
			wantProblems: []string{"Service ns/web InvalidScheduler"},
		},
		{
			name: "configured default applies without annotation",
			cfg:  Config{DefaultScheduler: "lc"},
			svcs: []*corev1.Service{web()},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http lc -> none"},
		},
		{
			name:         "invalid annotation falls back to the configured default",
			cfg:          Config{DefaultScheduler: "lc"},
			svcs:         []*corev1.Service{web(annotate(SchedulerAnnotation, "bogus"))},
			want:         []string{"198.19.0.1:80/TCP ClusterIP ns/web:http lc -> none"},
			wantProblems: []string{"Service ns/web InvalidScheduler"},
		},
		{
			name: "scheduler applies to every VIP of the Service",
			svcs: []*corev1.Service{webNP(annotate(SchedulerAnnotation, "sh"), externalIPs("198.19.1.1"))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http sh -> none",
				"198.19.0.1:80/TCP ClusterIP ns/web:http sh -> none",
				"198.19.1.1:80/TCP ExternalIP ns/web:http sh -> none",
			},
		},
		{
			name: "sessionAffinity None: not persistent",
			svcs: []*corev1.Service{web(func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityNone })},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		},
		{
			name: "sessionAffinity ClientIP without config: the default 10800 s",
			svcs: []*corev1.Service{web(clientIPAffinity(nil))},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr persist=10800 -> none"},
		},
		{
			name: "sessionAffinity ClientIP with config but no timeout: 10800 s",
			svcs: []*corev1.Service{web(clientIPAffinity(nil), func(s *corev1.Service) {
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{}}
			})},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr persist=10800 -> none"},
		},
		{
			name: "sessionAffinity ClientIP with timeoutSeconds, on every VIP",
			svcs: []*corev1.Service{webNP(clientIPAffinity(ptr(int32(60))))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr persist=60 -> none",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr persist=60 -> none",
			},
		},
		{
			name: "sessionAffinityConfig without sessionAffinity ClientIP: not persistent",
			svcs: []*corev1.Service{web(func(s *corev1.Service) {
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}}
			})},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		},
	}...)
	runTable(t, cases)
}

// TestServiceTypeChange computes one Service before and after an update and
// checks what appears and what goes.
func TestServiceTypeChange(t *testing.T) {
	sl := []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1"), ep("198.18.128.2", local()))}
	clusterIP := web()
	nodePort := webNP()
	lb := webNP(svcType(corev1.ServiceTypeLoadBalancer), ingress(ingIP("198.19.2.1")))
	lbLocal := webNP(svcType(corev1.ServiceTypeLoadBalancer), ingress(ingIP("198.19.2.1")), etpLocal(), healthCheckNodePort(32000))
	// Back to ClusterIP: the API server drops the nodePorts, the status may
	// still name the old load balancer for a while.
	lbToClusterIP := web(ingress(ingIP("198.19.2.1")))
	externalName := service("web", svcType(corev1.ServiceTypeExternalName), func(s *corev1.Service) { s.Spec.ExternalName = "web.example.test" })

	const (
		cip  = "198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080 198.18.128.2:8080*"
		np   = "198.18.0.1:30080/TCP NodePort ns/web:http rr localEps -> 198.18.128.1:8080 198.18.128.2:8080*"
		lbv  = "198.19.2.1:80/TCP LoadBalancer ns/web:http rr localEps -> 198.18.128.1:8080 198.18.128.2:8080*"
		npL  = "198.18.0.1:30080/TCP NodePort ns/web:http rr extLocal localEps -> 198.18.128.2:8080*"
		lbvL = "198.19.2.1:80/TCP LoadBalancer ns/web:http rr extLocal localEps -> 198.18.128.2:8080*"
	)
	steps := []struct {
		name                   string
		from, to               *corev1.Service
		added, removed, wantTo []string
		wantHC                 []string
	}{
		{name: "ClusterIP to NodePort", from: clusterIP, to: nodePort, added: []string{np}, wantTo: []string{np, cip}},
		{name: "NodePort to LoadBalancer", from: nodePort, to: lb, added: []string{lbv}, wantTo: []string{np, cip, lbv}},
		{name: "LoadBalancer to ClusterIP", from: lb, to: lbToClusterIP, removed: []string{np, lbv}, wantTo: []string{cip}},
		{name: "NodePort to ClusterIP", from: nodePort, to: clusterIP, removed: []string{np}, wantTo: []string{cip}},
		{
			name: "LoadBalancer Cluster to Local", from: lb, to: lbLocal,
			added: []string{npL, lbvL}, removed: []string{np, lbv}, wantTo: []string{npL, cip, lbvL},
			wantHC: []string{"ns/web :32000 local=1"},
		},
		{name: "LoadBalancer Local to ClusterIP drops the health check", from: lbLocal, to: clusterIP, removed: []string{npL, lbvL}, wantTo: []string{cip}},
		{name: "ClusterIP to ExternalName", from: clusterIP, to: externalName, removed: []string{cip}},
		{name: "ExternalName to ClusterIP", from: externalName, to: clusterIP, added: []string{cip}, wantTo: []string{cip}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before, _ := computeChecked(t, Input{Services: []*corev1.Service{s.from}, Slices: groupSlices(sl), Node: v4Node()}, Config{})
			after, problems := computeChecked(t, Input{Services: []*corev1.Service{s.to}, Slices: groupSlices(sl), Node: v4Node()}, Config{})
			if len(problems) > 0 {
				t.Errorf("problems: %+v", problems)
			}
			b, a := render(before), render(after)
			if d := cmp.Diff(s.wantTo, a); d != "" {
				t.Errorf("after (-want +got):\n%s", d)
			}
			var added, removed []string
			for _, l := range a {
				if !slices.Contains(b, l) {
					added = append(added, l)
				}
			}
			for _, l := range b {
				if !slices.Contains(a, l) {
					removed = append(removed, l)
				}
			}
			if d := cmp.Diff(s.added, added); d != "" {
				t.Errorf("added (-want +got):\n%s", d)
			}
			if d := cmp.Diff(s.removed, removed); d != "" {
				t.Errorf("removed (-want +got):\n%s", d)
			}
			if d := cmp.Diff(s.wantHC, renderHC(after)); d != "" {
				t.Errorf("health checks (-want +got):\n%s", d)
			}
		})
	}
}
