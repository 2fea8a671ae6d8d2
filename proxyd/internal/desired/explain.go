package desired

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/proxyd/internal/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Explanation says why one virtual service of a Service has the real
// servers it has. Explain computes it with the very rules ComputeService
// applies (portEndpoints, choose), so the selected candidates are always
// the virtual service's real servers.
type Explanation struct {
	// VS is the virtual service as ComputeService computes it.
	VS *model.VirtualService
	// PolicyLocal: the traffic policy in force for VS's kind is Local;
	// PolicyField names it (internalTrafficPolicy or externalTrafficPolicy).
	PolicyLocal bool
	PolicyField string
	// Topology is "" when the Service asks for no topology-aware routing,
	// else how it asks (the trafficDistribution value or the annotation).
	Topology string
	// TopologyApplied: the hints narrowed the ready endpoints.
	TopologyApplied bool
	// Candidates are every endpoint of the Service port in VS's family,
	// sorted by address.
	Candidates []Candidate
}

// Candidate is one endpoint and why it is, or is not, a real server.
type Candidate struct {
	Addr                        netip.AddrPort
	Node, Pod                   string
	Ready, Serving, Terminating bool
	Local                       bool
	Selected                    bool
	// Reason is a stable CamelCase code: Ready, ReadyLocal, TopologyHint,
	// ServingTerminatingFallback (selected); NotReady, Terminating,
	// NotLocal, OtherTopology (not).
	Reason  string
	Message string
}

// Explain explains the virtual service at key of svc (false: svc has none
// there). Its arguments are ComputeService's.
func Explain(svc *corev1.Service, slices_ []*discoveryv1.EndpointSlice, node Node, cfg Config, key model.VSKey) (Explanation, bool) {
	if svc == nil {
		return Explanation{}, false
	}
	res := ComputeService(svc, slices_, node, cfg)
	i := slices.IndexFunc(res.Services, func(vs *model.VirtualService) bool { return vs.VSKey == key })
	if i < 0 {
		return Explanation{}, false
	}
	vs := res.Services[i]
	x := Explanation{VS: vs, PolicyField: "internalTrafficPolicy"}
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	externalLocal := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	x.PolicyLocal = policyLocal(vs.Kind, internalLocal, externalLocal)
	if vs.Kind.External() {
		x.PolicyField = "externalTrafficPolicy"
	}
	mode := serviceTopology(svc)
	x.Topology = topologyRequest(svc, mode)

	spIdx := slices.IndexFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool {
		p, ok := protocol(sp.Protocol)
		return ok && p == vs.Proto && sp.Name == vs.PortName
	})
	if spIdx < 0 {
		return x, true // cannot happen: vs came from one of these ports
	}
	sp := svc.Spec.Ports[spIdx]
	fam := discoveryv1.AddressTypeIPv4
	if vs.Addr.Is6() {
		fam = discoveryv1.AddressTypeIPv6
	}
	node.IPs = nodeAddrs(node.IPs)
	eps := portEndpoints(sp, cmp.Or(sp.Protocol, corev1.ProtocolTCP), fam, sortedSlices(slices_), node.Name, func(*discoveryv1.EndpointSlice, string) {})
	sel := choose(eps, mode, node)
	chosen := sel.forPolicy(x.PolicyLocal)
	ready := filter(eps, func(e endpoint) bool { return e.ready })
	preferred := preferTopology(ready, mode, node)
	x.TopologyApplied = mode != topologyNone && len(preferred) < len(ready)
	for _, e := range eps {
		c := Candidate{Addr: e.addr, Node: e.nodeName, Pod: e.pod, Ready: e.ready, Serving: e.serving, Terminating: e.terminating, Local: e.local,
			Selected: slices.ContainsFunc(chosen, func(o endpoint) bool { return o.addr == e.addr })}
		c.Reason, c.Message = x.why(e, c.Selected, node)
		x.Candidates = append(x.Candidates, c)
	}
	return x, true
}

// why gives the reason for a candidate's being selected or not. Selection
// itself comes from choose; this only names the rule that decided it.
func (x Explanation) why(e endpoint, selected bool, node Node) (string, string) {
	policy := fmt.Sprintf("%s is %s", x.PolicyField, map[bool]string{true: "Local", false: "Cluster"}[x.PolicyLocal])
	switch {
	case x.PolicyLocal && !e.local:
		return "NotLocal", fmt.Sprintf("on node %q, not this one, and %s", cmp.Or(e.nodeName, "unknown"), policy)
	case !e.ready && !e.serving:
		return "NotReady", "neither ready nor serving"
	case !e.ready && selected:
		return "ServingTerminatingFallback", "terminating but still serving, and no endpoint is ready (" + policy + "): used rather than drop traffic"
	case !e.ready && e.terminating:
		return "Terminating", "terminating (still serving): used only when no endpoint is ready"
	case !e.ready:
		return "NotReady", "serving but not ready and not terminating"
	case x.PolicyLocal:
		return "ReadyLocal", "ready, on this node (" + policy + ")"
	case x.TopologyApplied && selected:
		return "TopologyHint", "ready, and hinted for " + here(x, node)
	case x.TopologyApplied:
		return "OtherTopology", "ready, but hinted for " + hints(e) + ", not " + here(x, node)
	}
	return "Ready", "ready"
}

func here(x Explanation, node Node) string {
	if x.Topology == string(corev1.ServiceTrafficDistributionPreferSameNode) && node.Zone == "" {
		return "node " + node.Name
	}
	return fmt.Sprintf("node %s or its zone %q", node.Name, node.Zone)
}

func hints(e endpoint) string {
	var parts []string
	if len(e.nodes) > 0 {
		parts = append(parts, "nodes "+strings.Join(e.nodes, ","))
	}
	if len(e.zones) > 0 {
		parts = append(parts, "zones "+strings.Join(e.zones, ","))
	}
	return strings.Join(parts, " and ")
}

// topologyRequest names how svc asks for topology-aware routing ("": it
// does not).
func topologyRequest(svc *corev1.Service, mode topologyMode) string {
	if mode == topologyNone {
		return ""
	}
	if td := svc.Spec.TrafficDistribution; td != nil && *td != "" {
		return *td
	}
	return "topology-mode Auto"
}
