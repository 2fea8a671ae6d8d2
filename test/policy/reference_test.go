package policy

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	klabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// reference is a deliberately naive reading of the NetworkPolicy API (the
// networking.k8s.io/v1 reference and the concepts page), evaluated cell by
// cell with loops over every policy and rule. It exists only to check the
// hand-written matrices of the cases: two independent readings of the API
// that agree are unlikely to share a mistake. It is not how firewalld
// works, and it never decides whether firewalld passes.
type reference struct {
	model Model
	addrs addresses
	// The labels of the step evaluated.
	podLabels func(Peer) map[string]string
	nsLabels  func(string) map[string]string
}

// referenceAt is the reference for a step of a case.
func referenceAt(m Model, a addresses, s step) reference {
	return reference{
		model: m, addrs: a,
		podLabels: func(p Peer) map[string]string { return podLabelsAt(s, p) },
		nsLabels:  func(ns string) map[string]string { return namespaceLabelsAt(s, ns) },
	}
}

// expectedMatrix is a step's hand-written matrix.
func expectedMatrix(m Model, ports []Port, s step) *Matrix {
	e := NewExpectation(m, ports)
	if s.expect != nil {
		s.expect(e)
	}
	return e.Matrix()
}

// checkStep compares a step's hand-written matrix with the reference's.
func checkStep(m Model, a addresses, s step) error {
	ports := ServedPorts()
	ref, err := referenceAt(m, a, s).matrix(s.policies, ports)
	if err != nil {
		return err
	}
	if d := Diff(ref, expectedMatrix(m, ports, s)); len(d) > 0 {
		return fmt.Errorf("the hand-written matrix disagrees with the reference evaluator in %d cells "+
			"(shown: hand-written; want: reference):\n%s%s", len(d), Format(ref, expectedMatrix(m, ports, s)), FormatMismatches(d, 0))
	}
	return nil
}

// matrix evaluates every cell under policies, on ports.
func (r reference) matrix(policies []*networkingv1.NetworkPolicy, ports []Port) (*Matrix, error) {
	m := NewMatrix(r.model, ports)
	for _, c := range m.Cells() {
		ok, err := r.reachable(policies, c)
		if err != nil {
			return nil, err
		}
		o := Blocked
		if ok {
			o = Reachable
		}
		m.Set(c, o, "")
	}
	return m, nil
}

func (r reference) reachable(policies []*networkingv1.NetworkPolicy, c Cell) (bool, error) {
	// "A pod cannot block access to itself", and "traffic to and from the
	// node where a Pod is running is always allowed".
	if c.From == c.To || c.From.Kind == NodePeer || c.To.Kind == NodePeer {
		return true, nil
	}
	in, err := r.allowedBy(policies, c, networkingv1.PolicyTypeIngress)
	if err != nil {
		return false, err
	}
	out, err := r.allowedBy(policies, c, networkingv1.PolicyTypeEgress)
	return in && out, err
}

// allowedBy reports whether the policies of one direction allow c: when no
// policy of that direction selects the pod at this end it is not isolated;
// otherwise some rule of a policy selecting it must match.
func (r reference) allowedBy(policies []*networkingv1.NetworkPolicy, c Cell, dir networkingv1.PolicyType) (bool, error) {
	self, other := c.To, c.From
	if dir == networkingv1.PolicyTypeEgress {
		self, other = c.From, c.To
	}
	if !self.IsPod() {
		return true, nil
	}
	isolated := false
	for _, p := range policies {
		if p.Namespace != self.Namespace || !slices.Contains(effectivePolicyTypes(p), dir) {
			continue
		}
		sel, err := selector(&p.Spec.PodSelector)
		if err != nil {
			return false, err
		}
		if !sel.Matches(klabels.Set(r.podLabels(self))) {
			continue
		}
		isolated = true
		for _, rl := range rulesOf(p, dir) {
			peersOK, err := r.peersMatch(rl.peers, other, p.Namespace)
			if err != nil {
				return false, err
			}
			if peersOK && portsMatch(rl.ports, c.Port, c.To) {
				return true, nil
			}
		}
	}
	return !isolated, nil
}

// effectivePolicyTypes are the types a policy has once the apiserver has
// defaulted them: as given, else Ingress, plus Egress when it has egress
// rules.
func effectivePolicyTypes(p *networkingv1.NetworkPolicy) []networkingv1.PolicyType {
	if len(p.Spec.PolicyTypes) > 0 {
		return p.Spec.PolicyTypes
	}
	ts := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	if len(p.Spec.Egress) > 0 {
		ts = append(ts, networkingv1.PolicyTypeEgress)
	}
	return ts
}

func rulesOf(p *networkingv1.NetworkPolicy, dir networkingv1.PolicyType) []rule {
	var rs []rule
	if dir == networkingv1.PolicyTypeIngress {
		for _, r := range p.Spec.Ingress {
			rs = append(rs, rule{peers: r.From, ports: r.Ports})
		}
		return rs
	}
	for _, r := range p.Spec.Egress {
		rs = append(rs, rule{peers: r.To, ports: r.Ports})
	}
	return rs
}

// peersMatch: no peers match everything; otherwise one of them must match.
func (r reference) peersMatch(peers []networkingv1.NetworkPolicyPeer, p Peer, policyNS string) (bool, error) {
	if len(peers) == 0 {
		return true, nil
	}
	for _, peer := range peers {
		ok, err := r.peerMatches(peer, p, policyNS)
		if ok || err != nil {
			return ok, err
		}
	}
	return false, nil
}

func (r reference) peerMatches(peer networkingv1.NetworkPolicyPeer, p Peer, policyNS string) (bool, error) {
	if b := peer.IPBlock; b != nil {
		var ip netip.Addr
		switch p.Kind {
		case PodPeer:
			ip = r.addrs.PodIP(p)
		case WorldPeer:
			ip = r.addrs.WorldIP()
		default:
			return false, nil
		}
		block, err := netip.ParsePrefix(b.CIDR)
		if err != nil {
			return false, err
		}
		if !block.Contains(ip) {
			return false, nil
		}
		for _, e := range b.Except {
			ex, err := netip.ParsePrefix(e)
			if err != nil {
				return false, err
			}
			if ex.Contains(ip) {
				return false, nil
			}
		}
		return true, nil
	}
	// Selectors select pods only.
	if !p.IsPod() {
		return false, nil
	}
	if peer.NamespaceSelector == nil {
		if p.Namespace != policyNS {
			return false, nil
		}
	} else {
		sel, err := selector(peer.NamespaceSelector)
		if err != nil {
			return false, err
		}
		if !sel.Matches(klabels.Set(r.nsLabels(p.Namespace))) {
			return false, nil
		}
	}
	if peer.PodSelector == nil {
		return true, nil
	}
	sel, err := selector(peer.PodSelector)
	if err != nil {
		return false, err
	}
	return sel.Matches(klabels.Set(r.podLabels(p))), nil
}

// portsMatch: no ports match every port; otherwise one must match. Ports
// are the destination's: a named port is looked up in the destination pod's
// containers (the world declares no names).
func portsMatch(ports []networkingv1.NetworkPolicyPort, p Port, dst Peer) bool {
	if len(ports) == 0 {
		return true
	}
	for _, np := range ports {
		proto := corev1.ProtocolTCP
		if np.Protocol != nil {
			proto = *np.Protocol
		}
		if proto != p.Protocol {
			continue
		}
		switch {
		case np.Port == nil:
			return true
		case np.Port.Type == intstr.String:
			if dst.IsPod() && slices.Contains(declaredPorts(dst, np.Port.StrVal), p) {
				return true
			}
		case np.EndPort != nil:
			if p.Number >= np.Port.IntVal && p.Number <= *np.EndPort {
				return true
			}
		case np.Port.IntVal == p.Number:
			return true
		}
	}
	return false
}

// declaredPorts are the container ports of pod p called name.
func declaredPorts(p Peer, name string) []Port {
	var ps []Port
	for _, c := range podContainers(p) {
		for _, cp := range c.Ports {
			if cp.Name == name {
				ps = append(ps, Port{cp.Protocol, cp.ContainerPort})
			}
		}
	}
	return ps
}

func selector(s *metav1.LabelSelector) (klabels.Selector, error) {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, fmt.Errorf("selector %v: %w", s, err)
	}
	return sel, nil
}
