package policy

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Builders for NetworkPolicy objects, so that a case reads like the YAML
// it stands for:
//
//	netpol("x", "allow-y", labels("pod", "a"), ingressRules(from(namespacesWith("ns", "y")).on(port(TCP(80)))))

// netpol is a policy in namespace ns selecting the pods target selects.
func netpol(ns, name string, target *metav1.LabelSelector, opts ...func(*networkingv1.NetworkPolicySpec)) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       networkingv1.NetworkPolicySpec{PodSelector: *target},
	}
	for _, o := range opts {
		o(&p.Spec)
	}
	return p
}

// policies lists the policies of a step.
func policies(ps ...*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy { return ps }

// policyTypes sets spec.policyTypes; without it the apiserver defaults them
// (Ingress, plus Egress when there are egress rules).
func policyTypes(ts ...networkingv1.PolicyType) func(*networkingv1.NetworkPolicySpec) {
	return func(s *networkingv1.NetworkPolicySpec) { s.PolicyTypes = ts }
}

// Short names for the policy types.
const (
	ingressType = networkingv1.PolicyTypeIngress
	egressType  = networkingv1.PolicyTypeEgress
)

// rule is an ingress or egress rule: peers (from or to) and ports. No peers
// means every source or destination, no ports every port.
type rule struct {
	peers []networkingv1.NetworkPolicyPeer
	ports []networkingv1.NetworkPolicyPort
}

// from (or to: the same thing for egress rules) is a rule with peers.
func from(peers ...networkingv1.NetworkPolicyPeer) rule { return rule{peers: peers} }

// to is from for egress rules.
func to(peers ...networkingv1.NetworkPolicyPeer) rule { return rule{peers: peers} }

// anything is the rule {}: every peer, every port.
func anything() rule { return rule{} }

// on restricts a rule to ports.
func (r rule) on(ports ...networkingv1.NetworkPolicyPort) rule {
	r.ports = append(r.ports, ports...)
	return r
}

// ingressRules sets spec.ingress; with no rules, to the empty list (which
// allows nothing).
func ingressRules(rs ...rule) func(*networkingv1.NetworkPolicySpec) {
	return func(s *networkingv1.NetworkPolicySpec) {
		s.Ingress = []networkingv1.NetworkPolicyIngressRule{}
		for _, r := range rs {
			s.Ingress = append(s.Ingress, networkingv1.NetworkPolicyIngressRule{From: r.peers, Ports: r.ports})
		}
	}
}

// egressRules sets spec.egress.
func egressRules(rs ...rule) func(*networkingv1.NetworkPolicySpec) {
	return func(s *networkingv1.NetworkPolicySpec) {
		s.Egress = []networkingv1.NetworkPolicyEgressRule{}
		for _, r := range rs {
			s.Egress = append(s.Egress, networkingv1.NetworkPolicyEgressRule{To: r.peers, Ports: r.ports})
		}
	}
}

// labels is a selector matching these key, value pairs.
func labels(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

// everything is the empty selector, which selects everything.
func everything() *metav1.LabelSelector { return &metav1.LabelSelector{} }

// in is a selector requiring key to be one of values; notIn, none of them.
func in(key string, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values}}}
}

func notIn(key string, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: key, Operator: metav1.LabelSelectorOpNotIn, Values: values}}}
}

// podsWhere is a peer of the pods sel selects in the policy's own namespace.
func podsWhere(sel *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: sel}
}

// namespacesWhere is a peer of every pod of the namespaces sel selects.
func namespacesWhere(sel *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: sel}
}

// podsWhereIn is one peer with both selectors: the pods pods selects in the
// namespaces namespaces selects (both must match).
func podsWhereIn(namespaces, pods *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: namespaces, PodSelector: pods}
}

// cidr is an ipBlock peer.
func cidr(block netip.Prefix, except ...netip.Prefix) networkingv1.NetworkPolicyPeer {
	b := &networkingv1.IPBlock{CIDR: block.String()}
	for _, e := range except {
		b.Except = append(b.Except, e.String())
	}
	return networkingv1.NetworkPolicyPeer{IPBlock: b}
}

// host is the /32 of an address.
func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

// port is a numeric port with its protocol.
func port(p Port) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &p.Protocol, Port: new(intstr.FromInt32(p.Number))}
}

// portNoProtocol leaves the protocol out: the apiserver defaults it to TCP.
func portNoProtocol(n int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Port: new(intstr.FromInt32(n))}
}

// namedPort is a port by container port name, resolved on each pod.
func namedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: new(intstr.FromString(name))}
}

// portRange is the ports first to last (endPort).
func portRange(proto corev1.Protocol, first, last int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: new(intstr.FromInt32(first)), EndPort: &last}
}

// anyPortOf is every port of a protocol.
func anyPortOf(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}
