package desired

import (
	"net/netip"
	"slices"

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
}

func (e endpoint) servingTerminating() bool { return e.serving && e.terminating }

// portEndpoints collects the endpoints serving Service port sp in family
// (IPv4 or IPv6) from the Service's slices. It reports malformed endpoint
// addresses through bad.
func portEndpoints(sp corev1.ServicePort, proto corev1.Protocol, family discoveryv1.AddressType, slices_ []*discoveryv1.EndpointSlice, node string, bad func(*discoveryv1.EndpointSlice, string)) []endpoint {
	byAddr := map[netip.AddrPort]int{}
	var out []endpoint
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
			if err != nil || a.Zone() != "" || (family == discoveryv1.AddressTypeIPv4) != a.Is4() {
				bad(sl, "endpoint address "+ep.Addresses[0]+" is not an "+string(family)+" address")
				continue
			}
			e := endpoint{addr: netip.AddrPortFrom(a, port), local: ep.NodeName != nil && *ep.NodeName == node}
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
			// moves it; the readier copy counts.
			if i, dup := byAddr[e.addr]; dup {
				if !out[i].ready && e.ready {
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
		if same := filter(ready, func(e endpoint) bool { return slices.Contains(e.nodes, node.Name) }); len(same) > 0 {
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
	var out []endpoint
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}
