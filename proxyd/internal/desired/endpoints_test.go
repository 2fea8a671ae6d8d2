package desired

// Which endpoints of which EndpointSlices become real servers
// (kubernetes.io/docs/concepts/services-networking/endpoint-slices/, the
// discovery.k8s.io/v1 API reference for EndpointConditions, KEP-1669
// terminating endpoints).

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func TestEndpointConditions(t *testing.T) {
	one := func(name string, e ...discoveryv1.Endpoint) tcase {
		return tcase{name: name, svcs: []*corev1.Service{web()}, slices: []*discoveryv1.EndpointSlice{webSlice("web-1", e...)}}
	}
	cases := []tcase{
		// API: "A nil value indicates an unknown state. In most cases
		// consumers should interpret this unknown state as ready."
		one("ready nil counts as ready", ep("198.18.128.1")),
		one("ready true", ep("198.18.128.1", ready(true))),
		one("ready false, not terminating: not used", ep("198.18.128.1", notReady()), ep("198.18.128.2")),
		// Serving nil defers to ready: a ready endpoint whose serving is
		// unknown is simply ready.
		one("serving nil with ready true is ready", ep("198.18.128.1", ready(true), terminating(false))),
		// serving nil, ready false, terminating: serving defers to ready
		// (false), so it is not a serving-terminating fallback candidate.
		one("serving nil with ready false while terminating: never used", ep("198.18.128.1", ready(false), terminating(true))),
		// terminating nil means not terminating: serving but not ready and
		// not terminating is just not ready.
		one("serving true, ready false, terminating nil: not a fallback", ep("198.18.128.1", ready(false), serving(true))),
		one("no ready endpoint: serving terminating ones keep the Service up (KEP-1669)",
			ep("198.18.128.1", servingTerminating()), ep("198.18.128.2", servingTerminating(), local()), ep("198.18.128.3", notReady())),
		one("one ready endpoint anywhere: terminating ones get no new traffic",
			ep("198.18.128.1", servingTerminating()), ep("198.18.128.2")),
		one("non-serving terminating endpoints are never used, even when nothing else is left",
			ep("198.18.128.1", notServingTerminating()), ep("198.18.128.2", notReady())),
		one("ready nil but terminating (no controller writes it): ready wins",
			ep("198.18.128.1", terminating(true))),
	}
	want := [][]string{
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.2:8080"},
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		// The local fallback endpoint does not make LocalEndpoints true:
		// that flag means ready local endpoints.
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080 198.18.128.2:8080*"},
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.2:8080"},
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
	}
	for i := range cases {
		cases[i].want = want[i]
	}
	runTable(t, cases)
}

func TestEndpointSlices(t *testing.T) {
	runTable(t, []tcase{
		{
			name: "endpoints of several slices are merged",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1"), ep("198.18.128.3")),
				webSlice("web-2", ep("198.18.128.2")),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080 198.18.128.2:8080 198.18.128.3:8080"},
		},
		{
			// EndpointSlice docs: an endpoint may be in more than one slice
			// while the controller moves it; consumers build a list of
			// unique endpoints.
			name: "an endpoint in two slices counts once",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1")),
				webSlice("web-2", ep("198.18.128.1"), ep("198.18.128.2")),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080 198.18.128.2:8080"},
		},
		{
			name: "duplicate endpoint: the ready copy wins over a stale not-ready one",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1", notReady())),
				webSlice("web-2", ep("198.18.128.1", ready(true))),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
		},
		{
			// The runner also computes this with the slices reversed: the
			// outcome must not depend on which slice the informer listed
			// first.
			name: "duplicate endpoint, neither copy ready: the serving-terminating copy wins over the not-serving one",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1", notReady())),
				webSlice("web-2", ep("198.18.128.1", servingTerminating())),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
		},
		{
			name: "duplicate endpoint, both ready: one real server, the first slice by name decides locality",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-2", ep("198.18.128.1")),
				webSlice("web-1", ep("198.18.128.1", local())),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080*"},
		},
		{
			name: "same address with two target ports (targetPort changing) is two real servers",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1")),
				v4Slice("web", "web-2", eps(epp("http", tcp, 8081)), ep("198.18.128.1")),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080 198.18.128.1:8081"},
		},
		{
			name:   "only an endpoint's first address is used",
			svcs:   []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1", moreAddrs("198.18.128.99")))},
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
		},
		{
			name:   "an endpoint without addresses is skipped",
			svcs:   []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1", discoveryv1.Endpoint{}, ep("198.18.128.1"))},
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
		},
		{
			name: "IPv6 and FQDN slices of an IPv4 Service are ignored, not reported",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1")),
				webSlice6("web-2", ep("2001:db8:18:128::1")),
				slice("web", "web-3", discoveryv1.AddressTypeFQDN, httpPorts, ep("pod.example.test")),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080"},
		},
		{
			name: "slice port must match the Service port's name",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				v4Slice("web", "web-1", eps(epp("web", tcp, 8080)), ep("198.18.128.1")),
				webSlice("web-2", ep("198.18.128.2")),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.2:8080"},
		},
		{
			name: "slice port must match the Service port's protocol",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				v4Slice("web", "web-1", eps(epp("http", udp, 8080)), ep("198.18.128.1")),
				webSlice("web-2", ep("198.18.128.2")),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.2:8080"},
		},
		{
			name: "slice port without a number is not usable",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{
				v4Slice("web", "web-1", eps(discoveryv1.EndpointPort{Name: ptr("http"), Protocol: ptr(tcp)}), ep("198.18.128.1")),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none"},
		},
		{
			name: "a slice listing several ports serves each Service port with its own number",
			svcs: []*corev1.Service{service("web", clusterIPs("198.19.0.1"), ports(sp("http", tcp, 80, 0), sp("http", udp, 80, 0)))},
			slices: []*discoveryv1.EndpointSlice{
				v4Slice("web", "web-1", eps(epp("http", udp, 8053), epp("http", tcp, 8080)), ep("198.18.128.1")),
			},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.1:8080",
				"198.19.0.1:80/UDP ClusterIP ns/web:http rr -> 198.18.128.1:8053",
			},
		},
		{
			name: "single unnamed port: slice port name nil or empty",
			svcs: []*corev1.Service{service("web", clusterIPs("198.19.0.1"), ports(sp("", tcp, 80, 0)))},
			slices: []*discoveryv1.EndpointSlice{
				v4Slice("web", "web-1", eps(discoveryv1.EndpointPort{Protocol: ptr(tcp), Port: ptr(int32(8080))}), ep("198.18.128.1")),
				v4Slice("web", "web-2", eps(epp("", tcp, 8080)), ep("198.18.128.2")),
				v4Slice("web", "web-3", eps(epp("http", tcp, 8080)), ep("198.18.128.3")),
			},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web rr -> 198.18.128.1:8080 198.18.128.2:8080"},
		},
		{
			name: "endpoint on this node is a local real server",
			svcs: []*corev1.Service{web()},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local()), ep("198.18.128.2"), ep("198.18.128.3", noNode()), ep("198.18.128.4", onNode("node-a2")))},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080 198.18.128.3:8080 198.18.128.4:8080"},
		},
		{
			// Service docs, "Services without selectors": the user writes the
			// EndpointSlices, with any manager label and often no nodeName.
			name: "Service without selector, with hand-written EndpointSlices",
			svcs: []*corev1.Service{service("ext-db", clusterIPs("198.19.0.7"), ports(sp("pg", tcp, 5432, 0)))},
			slices: []*discoveryv1.EndpointSlice{func() *discoveryv1.EndpointSlice {
				sl := v4Slice("ext-db", "ext-db-1", eps(epp("pg", tcp, 5432)),
					discoveryv1.Endpoint{Addresses: []string{"198.18.200.1"}},
					discoveryv1.Endpoint{Addresses: []string{"198.18.200.2"}})
				sl.Labels[discoveryv1.LabelManagedBy] = "staff"
				return sl
			}()},
			want: []string{"198.19.0.7:5432/TCP ClusterIP ns/ext-db:pg rr -> 198.18.200.1:5432 198.18.200.2:5432"},
		},
		{
			name: "slices are per Service: another Service's slices are not used",
			svcs: []*corev1.Service{web(), service("api", clusterIPs("198.19.0.2"), ports(sp("http", tcp, 80, 0)))},
			slices: []*discoveryv1.EndpointSlice{
				v4Slice("api", "api-1", httpPorts, ep("198.18.128.9")),
			},
			want: []string{
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> none",
				"198.19.0.2:80/TCP ClusterIP ns/api:http rr -> 198.18.128.9:8080",
			},
		},
	})
}
