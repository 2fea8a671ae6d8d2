package desired

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// endpoint is one backend of one Service port, with what the selection
// rules need to know about it.
type endpoint struct {
	addr        netip.AddrPort
	ready       bool
	serving     bool
	terminating bool
	local       bool
	zones       []string // hints.forZones
	nodes       []string // hints.forNodes
	// nodeName and pod (targetRef "namespace/name") are for explanations.
	nodeName string
	pod      string
}

func (e endpoint) servingTerminating() bool { return e.serving && e.terminating }

// usability ranks two copies of one endpoint: ready, then serving, then
// neither.
func (e endpoint) usability() int {
	switch {
	case e.ready:
		return 2
	case e.serving:
		return 1
	}
	return 0
}

// sortedSlices returns the slices (nil ones dropped) in namespace/name order,
// so that nothing computed from them depends on the order the informer
// listed them in. The input is not modified.
func sortedSlices(in []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := make([]*discoveryv1.EndpointSlice, 0, len(in))
	for _, sl := range in {
		if sl != nil {
			out = append(out, sl)
		}
	}
	slices.SortStableFunc(out, func(a, b *discoveryv1.EndpointSlice) int {
		if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// portEndpoints collects the endpoints serving Service port sp in family
// (IPv4 or IPv6) from the Service's slices. It reports malformed endpoint
// addresses through bad.
func portEndpoints(sp corev1.ServicePort, proto corev1.Protocol, family discoveryv1.AddressType, slices_ []*discoveryv1.EndpointSlice, node string, bad func(*discoveryv1.EndpointSlice, string)) []endpoint {
	n := 0
	for _, sl := range slices_ {
		n += len(sl.Endpoints)
	}
	byAddr := make(map[netip.AddrPort]int, n)
	out := make([]endpoint, 0, n)
	for _, sl := range slices_ {
		if sl.AddressType != family {
			continue
		}
		port, ok := slicePort(sl, sp.Name, proto)
		if !ok {
			continue
		}
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			// Addresses are fungible; like every proxy, use the first.
			a, err := netip.ParseAddr(ep.Addresses[0])
			// An IPv4-mapped IPv6 address is not an IPv6 address either: the
			// API server's EndpointSlice validation rejects it in an IPv6
			// slice (it checks To4() == nil), and IPVS cannot NAT to it.
			if err != nil || a.Zone() != "" || a.Is4In6() || (family == discoveryv1.AddressTypeIPv4) != a.Is4() {
				bad(sl, "endpoint address "+ep.Addresses[0]+" is not an "+string(family)+" address")
				continue
			}
			e := endpoint{addr: netip.AddrPortFrom(a, port), local: ep.NodeName != nil && *ep.NodeName == node}
			if ep.NodeName != nil {
				e.nodeName = *ep.NodeName
			}
			if r := ep.TargetRef; r != nil && r.Kind == "Pod" {
				e.pod = cmp.Or(r.Namespace, sl.Namespace) + "/" + r.Name
			}
			e.ready = ep.Conditions.Ready == nil || *ep.Conditions.Ready
			e.serving = e.ready
			if ep.Conditions.Serving != nil {
				e.serving = *ep.Conditions.Serving
			}
			e.terminating = ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
			if ep.Hints != nil {
				for _, z := range ep.Hints.ForZones {
					e.zones = append(e.zones, z.Name)
				}
				for _, n := range ep.Hints.ForNodes {
					e.nodes = append(e.nodes, n.Name)
				}
			}
			// The same endpoint can sit in two slices while the controller
			// moves it (EndpointSlice docs, "Duplicate endpoints": consumers
			// merge all of a Service's slices into unique endpoints); the
			// readier copy counts. Ready beats serving-terminating beats neither (before,
			// only ready was compared, so which of two non-ready copies won
			// depended on slice order); equal copies: the first slice by
			// name, see sortedSlices.
			if i, dup := byAddr[e.addr]; dup {
				if e.usability() > out[i].usability() {
					out[i] = e
				}
				continue
			}
			byAddr[e.addr] = len(out)
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b endpoint) int { return a.addr.Compare(b.addr) })
	return out
}

// slicePort finds the slice's port for a Service port: same name, same
// protocol (unset means TCP), a valid number.
func slicePort(sl *discoveryv1.EndpointSlice, name string, proto corev1.Protocol) (uint16, bool) {
	for _, p := range sl.Ports {
		pname := ""
		if p.Name != nil {
			pname = *p.Name
		}
		pproto := corev1.ProtocolTCP
		if p.Protocol != nil {
			pproto = *p.Protocol
		}
		if pname != name || pproto != proto || p.Port == nil || *p.Port < 1 || *p.Port > 65535 {
			continue
		}
		return uint16(*p.Port), true
	}
	return 0, false
}

// selection is the outcome of the endpoint rules for one Service port.
type selection struct {
	cluster []endpoint // for traffic policy Cluster
	local   []endpoint // for traffic policy Local
	// localReady: ready endpoints on this node (not the terminating fallback).
	localReady int
}

// forPolicy returns the endpoints of traffic policy Local (local) or
// Cluster.
func (s selection) forPolicy(local bool) []endpoint {
	if local {
		return s.local
	}
	return s.cluster
}

// topologyMode is how a Service asks for topology-aware routing.
type topologyMode int

const (
	topologyNone topologyMode = iota
	topologyZone
	topologySameNode
)

func serviceTopology(svc *corev1.Service) topologyMode {
	if td := svc.Spec.TrafficDistribution; td != nil {
		switch *td {
		case corev1.ServiceTrafficDistributionPreferSameNode:
			return topologySameNode
		case corev1.ServiceTrafficDistributionPreferClose, corev1.ServiceTrafficDistributionPreferSameZone:
			return topologyZone
		}
	}
	for _, a := range []string{corev1.AnnotationTopologyMode, corev1.DeprecatedAnnotationTopologyAwareHints} {
		if v := svc.Annotations[a]; v == "Auto" || v == "auto" {
			return topologyZone
		}
	}
	return topologyNone
}

// choose applies the readiness, terminating-fallback and topology rules.
func choose(eps []endpoint, mode topologyMode, node Node) selection {
	var s selection
	ready := filter(eps, func(e endpoint) bool { return e.ready })
	s.cluster = preferTopology(ready, mode, node)
	if len(s.cluster) == 0 {
		// No ready endpoint anywhere: keep serving with the ones that are
		// terminating but still serve (KEP-1669), rather than drop traffic.
		s.cluster = filter(eps, endpoint.servingTerminating)
	}
	s.local = filter(ready, func(e endpoint) bool { return e.local })
	s.localReady = len(s.local)
	if len(s.local) == 0 {
		s.local = filter(eps, func(e endpoint) bool { return e.local && e.servingTerminating() })
	}
	return s
}

// preferTopology narrows ready endpoints to the ones hinted for this node or
// its zone, when the hints allow it; otherwise it returns them all.
func preferTopology(ready []endpoint, mode topologyMode, node Node) []endpoint {
	if mode == topologyNone || len(ready) == 0 {
		return ready
	}
	if mode == topologySameNode {
		// Node hints, like zone hints below, are all or nothing: they count
		// only when every ready endpoint carries one (kube-proxy's
		// topologyModeFromHints; KEP-3015 has the controller hint every
		// endpoint). Before, one endpoint hinted for this node captured all
		// traffic even when others had no node hint at all.
		allHinted := !slices.ContainsFunc(ready, func(e endpoint) bool { return len(e.nodes) == 0 })
		if same := filter(ready, func(e endpoint) bool { return slices.Contains(e.nodes, node.Name) }); allHinted && len(same) > 0 {
			return same
		}
	}
	if node.Zone == "" {
		return ready
	}
	for _, e := range ready {
		// One endpoint without hints means the controller has not (or could
		// not) hint this slice set: hints are all or nothing.
		if len(e.zones) == 0 {
			return ready
		}
	}
	if inZone := filter(ready, func(e endpoint) bool { return slices.Contains(e.zones, node.Zone) }); len(inZone) > 0 {
		return inZone
	}
	return ready
}

func filter(eps []endpoint, keep func(endpoint) bool) []endpoint {
	n := 0
	for _, e := range eps {
		if keep(e) {
			n++
		}
	}
	if n == len(eps) {
		return eps // all kept: share (results are never modified)
	}
	out := make([]endpoint, 0, n)
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}
