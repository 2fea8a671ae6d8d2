package desired

// Topology: spec.trafficDistribution (KEP-4444; PreferSameZone and
// PreferSameNode from KEP-3015) and the service.kubernetes.io/topology-mode
// annotation (topology aware routing, KEP-2433). The proxy follows the hints
// the EndpointSlice controller wrote, with the documented safeguards: hints
// are all or nothing, a node without a zone label or a zone no hint names
// falls back to every endpoint, and Local traffic policy wins.
// kubernetes.io/docs/concepts/services-networking/topology-aware-routing/,
// .../service/#traffic-distribution.

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

func TestTopology(t *testing.T) {
	noZone := v4Node()
	noZone.Zone = ""

	// The usual picture: .1 on this node and .2 elsewhere in zone-a, .3 in
	// zone-b, each hinted for its own zone.
	zoned := []*discoveryv1.EndpointSlice{webSlice("web-1",
		ep("198.18.128.1", local(), forZones(thisZone)),
		ep("198.18.128.2", onNode("node-c"), forZones(thisZone)),
		ep("198.18.128.3", forZones(peerZone)))}
	// Same with node hints as well, as the controller writes them for
	// PreferSameNode.
	noded := []*discoveryv1.EndpointSlice{webSlice("web-1",
		ep("198.18.128.1", local(), forNodes(thisNode), forZones(thisZone)),
		ep("198.18.128.2", onNode("node-c"), forNodes("node-c"), forZones(thisZone)),
		ep("198.18.128.3", forNodes(peerNode), forZones(peerZone)))}
	elsewhere := []*discoveryv1.EndpointSlice{webSlice("web-1",
		ep("198.18.128.2", onNode("node-c"), forNodes("node-c"), forZones(thisZone)),
		ep("198.18.128.3", forNodes(peerNode), forZones(peerZone)))}

	const (
		all      = "198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080 198.18.128.3:8080"
		sameZone = "198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080"
		sameNode = "198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080*"
	)
	td := func(v string) *corev1.Service { return web(trafficDistribution(v)) }

	runTable(t, []tcase{
		{name: "nothing requested: hints are ignored", svcs: []*corev1.Service{web()}, slices: zoned, want: []string{all}},
		{name: "trafficDistribution PreferClose: this zone's endpoints", svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferClose)}, slices: zoned, want: []string{sameZone}},
		{name: "trafficDistribution PreferSameZone", svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferSameZone)}, slices: zoned, want: []string{sameZone}},
		{name: "annotation topology-mode Auto", svcs: []*corev1.Service{web(annotate(corev1.AnnotationTopologyMode, "Auto"))}, slices: zoned, want: []string{sameZone}},
		{name: "annotation topology-mode auto", svcs: []*corev1.Service{web(annotate(corev1.AnnotationTopologyMode, "auto"))}, slices: zoned, want: []string{sameZone}},
		{name: "older annotation topology-aware-hints auto", svcs: []*corev1.Service{web(annotate(corev1.DeprecatedAnnotationTopologyAwareHints, "auto"))}, slices: zoned, want: []string{sameZone}},
		{name: "annotation topology-mode Disabled", svcs: []*corev1.Service{web(annotate(corev1.AnnotationTopologyMode, "Disabled"))}, slices: zoned, want: []string{all}},
		{name: "unknown trafficDistribution value: default distribution", svcs: []*corev1.Service{td("PreferSameRack")}, slices: zoned, want: []string{all}},
		{
			name: "one ready endpoint without hints: hints are all or nothing, use every endpoint",
			svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferClose)},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local(), forZones(thisZone)), ep("198.18.128.2", onNode("node-c"), forZones(thisZone)),
				ep("198.18.128.3"))},
			want: []string{all},
		},
		{
			name: "an unhinted endpoint that is not ready does not disable hints",
			svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferClose)},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local(), forZones(thisZone)), ep("198.18.128.2", onNode("node-c"), forZones(thisZone)),
				ep("198.18.128.3", forZones(peerZone)), ep("198.18.128.4", notReady()))},
			want: []string{sameZone},
		},
		{
			name: "hints in two slices are considered together",
			svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferClose)},
			slices: []*discoveryv1.EndpointSlice{
				webSlice("web-1", ep("198.18.128.1", local(), forZones(thisZone))),
				webSlice("web-2", ep("198.18.128.2", onNode("node-c"), forZones(thisZone)), ep("198.18.128.3")),
			},
			want: []string{all},
		},
		{
			name: "no hint names this node's zone: every endpoint",
			svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferClose)},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local(), forZones(peerZone)), ep("198.18.128.2", onNode("node-c"), forZones("zone-c")),
				ep("198.18.128.3", forZones(peerZone)))},
			want: []string{all},
		},
		{name: "node without a zone label: every endpoint", node: &noZone, svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferClose)}, slices: zoned, want: []string{all}},
		{
			// Topology aware routing: the controller may hint an endpoint of
			// another zone for this one to balance capacity; the hint decides,
			// not the endpoint's own zone.
			name: "the hint decides, not where the endpoint runs; an endpoint may serve several zones",
			svcs: []*corev1.Service{web(annotate(corev1.AnnotationTopologyMode, "Auto"))},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local(), forZones(thisZone)), ep("198.18.128.2", onNode("node-c"), forZones(peerZone)),
				ep("198.18.128.3", forZones(peerZone, thisZone)))},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.3:8080"},
		},
		{name: "PreferSameNode: the endpoints hinted for this node", svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferSameNode)}, slices: noded, want: []string{sameNode}},
		{
			name:   "PreferSameNode with no endpoint for this node: falls back to the zone hints",
			svcs:   []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferSameNode)},
			slices: elsewhere,
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.2:8080"},
		},
		{
			// kube-proxy's topologyModeFromHints: node hints count only
			// when every ready endpoint has one.
			name: "PreferSameNode with a ready endpoint lacking node hints: node hints ignored, zone hints used",
			svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferSameNode)},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local(), forNodes(thisNode), forZones(thisZone)),
				ep("198.18.128.2", onNode("node-c"), forZones(thisZone)),
				ep("198.18.128.3", forNodes(peerNode), forZones(peerZone)))},
			want: []string{sameZone},
		},
		{name: "PreferSameNode on a node without zone label still uses node hints", node: &noZone, svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferSameNode)}, slices: noded, want: []string{sameNode}},
		{name: "PreferSameNode with zone hints only: the zone", svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferSameNode)}, slices: zoned, want: []string{sameZone}},
		{name: "PreferClose ignores node hints", svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferClose)}, slices: noded, want: []string{sameZone}},
		{
			name:   "topology applies to external VIPs under Cluster policy",
			svcs:   []*corev1.Service{webNP(trafficDistribution(corev1.ServiceTrafficDistributionPreferClose), externalIPs("198.19.1.1"))},
			slices: zoned,
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080",
				sameZone,
				"198.19.1.1:80/TCP ExternalIP ns/web:http rr localEps -> 198.18.128.1:8080* 198.18.128.2:8080",
			},
		},
		{
			// The local endpoint is hinted for the other zone: topology
			// alone would not pick it, policy Local must.
			name: "externalTrafficPolicy Local wins over topology on external VIPs; the ClusterIP keeps topology",
			svcs: []*corev1.Service{webNP(trafficDistribution(corev1.ServiceTrafficDistributionPreferClose), etpLocal())},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local(), forZones(peerZone)), ep("198.18.128.2", onNode("node-c"), forZones(thisZone)),
				ep("198.18.128.3", forZones(peerZone)))},
			want: []string{
				"198.18.0.1:30080/TCP NodePort ns/web:http rr extLocal localEps -> 198.18.128.1:8080*",
				"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.2:8080",
			},
		},
		{
			name: "internalTrafficPolicy Local wins over topology on the ClusterIP",
			svcs: []*corev1.Service{web(trafficDistribution(corev1.ServiceTrafficDistributionPreferSameZone), itp(corev1.ServiceInternalTrafficPolicyLocal))},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.1", local(), forZones(peerZone)), ep("198.18.128.2", onNode("node-c"), forZones(thisZone)),
				ep("198.18.128.3", forZones(peerZone)))},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr localEps -> 198.18.128.1:8080*"},
		},
		{
			// kube-proxy: when falling back to terminating endpoints,
			// topology is not considered (a best effort not to drop
			// connections).
			name: "terminating fallback ignores topology",
			svcs: []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferClose)},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1",
				ep("198.18.128.2", onNode("node-c"), forZones(thisZone), notReady()),
				ep("198.18.128.3", forZones(peerZone), servingTerminating()))},
			want: []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.3:8080"},
		},
		{
			name:   "the zone's only endpoint not ready: its hint no longer counts, every ready endpoint",
			svcs:   []*corev1.Service{td(corev1.ServiceTrafficDistributionPreferClose)},
			slices: []*discoveryv1.EndpointSlice{webSlice("web-1", ep("198.18.128.1", local(), forZones(thisZone), notReady()), ep("198.18.128.3", forZones(peerZone)), ep("198.18.128.4", forZones(peerZone)))},
			want:   []string{"198.19.0.1:80/TCP ClusterIP ns/web:http rr -> 198.18.128.3:8080 198.18.128.4:8080"},
		},
	})
}
