package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// compiledPolicy is a NetworkPolicy checked and parsed once per compile.
type compiledPolicy struct {
	key, namespace, name string
	// selector is nil when the podSelector is invalid: it selects nothing.
	selector        labels.Selector
	problems        []Problem
	ingress, egress bool
	rules           [2][]compiledRule // by direction-1
}

func (p *compiledPolicy) dirRules(d model.Direction) []compiledRule { return p.rules[d-1] }

func (p *compiledPolicy) has(d model.Direction) bool {
	if d == model.Ingress {
		return p.ingress
	}
	return p.egress
}

// compiledRule is one ingress or egress rule.
type compiledRule struct {
	// allPeers: the rule lists no peers and so matches every address.
	allPeers bool
	peers    []*peer
	// allPorts: the rule lists no ports and so matches all traffic.
	allPorts bool
	ports    []portSpec
}

// portSpec is one entry of a rule's ports: numeric (port..endPort, 0..65535
// when no port is given) or named.
type portSpec struct {
	proto        uint8
	from, to     uint16
	name         string
	protocolName corev1.Protocol
}

// peer is a canonical peer: two rules naming the same pods or blocks share
// one, so identities are matched against each distinct peer once.
type peer struct {
	key string
	// Selector peers: pods in namespace (when nsSelector is nil) or in the
	// namespaces nsSelector matches, whose labels podSelector matches (all
	// pods when nil).
	selectorPeer bool
	namespace    string
	nsSelector   labels.Selector
	podSelector  labels.Selector
	// ipBlock peers: cidr minus except.
	cidr   netip.Prefix
	except []netip.Prefix
}

// peerTable dedups peers by key.
type peerTable map[string]*peer

func (t peerTable) intern(p *peer) *peer {
	if q, ok := t[p.key]; ok {
		return q
	}
	t[p.key] = p
	return p
}

// parsePolicy compiles np, with its problems: a policy whose podSelector
// is invalid selects nothing; invalid peers and ports are dropped, and a
// rule left without any valid peer or port matches nothing (it never
// becomes a rule "for all").
func parsePolicy(np *networkingv1.NetworkPolicy, peers peerTable) *compiledPolicy {
	p := &compiledPolicy{key: np.Namespace + "/" + np.Name, namespace: np.Namespace, name: np.Name}
	var ps problemList
	report := func(reason, format string, args ...any) {
		ps.add("NetworkPolicy", np.Namespace, np.Name, reason, format, args...)
	}
	defer func() { p.problems = ps.list }()
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		report(ReasonInvalidSelector, "podSelector: %v; the policy is ignored", err)
		return p
	}
	p.selector = sel
	if len(np.Spec.PolicyTypes) == 0 {
		// The API's default: Ingress always, Egress when there are egress rules.
		p.ingress, p.egress = true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			p.ingress = true
		case networkingv1.PolicyTypeEgress:
			p.egress = true
		default:
			report(ReasonInvalidType, "policyTypes: unknown type %q ignored", t)
		}
	}
	for i, r := range np.Spec.Ingress {
		p.rules[0] = append(p.rules[0], parseRule(np, fmt.Sprintf("ingress[%d]", i), r.From, r.Ports, peers, report))
	}
	for i, r := range np.Spec.Egress {
		p.rules[1] = append(p.rules[1], parseRule(np, fmt.Sprintf("egress[%d]", i), r.To, r.Ports, peers, report))
	}
	return p
}

func parseRule(np *networkingv1.NetworkPolicy, where string, from []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, peers peerTable, report func(reason, format string, args ...any)) compiledRule {
	r := compiledRule{allPeers: len(from) == 0, allPorts: len(ports) == 0}
	for i := range from {
		p, err := parsePeer(np.Namespace, &from[i])
		if err != nil {
			report(ReasonInvalidPeer, "%s peer %d: %v; the peer is ignored", where, i, err)
			continue
		}
		r.peers = append(r.peers, peers.intern(p))
	}
	for i, pp := range ports {
		s, err := parsePort(pp)
		if err != nil {
			report(ReasonInvalidPort, "%s port %d: %v; the port is ignored", where, i, err)
			continue
		}
		r.ports = append(r.ports, s)
	}
	return r
}

// parsePeer compiles a peer of a policy in namespace ns.
func parsePeer(ns string, np *networkingv1.NetworkPolicyPeer) (*peer, error) {
	if b := np.IPBlock; b != nil {
		if np.PodSelector != nil || np.NamespaceSelector != nil {
			return nil, fmt.Errorf("ipBlock together with a selector")
		}
		return parseIPBlock(b)
	}
	if np.PodSelector == nil && np.NamespaceSelector == nil {
		return nil, fmt.Errorf("no podSelector, namespaceSelector or ipBlock")
	}
	p := &peer{selectorPeer: true, namespace: ns}
	var key strings.Builder
	key.WriteString("sel\x00")
	if np.NamespaceSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(np.NamespaceSelector)
		if err != nil {
			return nil, fmt.Errorf("namespaceSelector: %w", err)
		}
		p.nsSelector, p.namespace = s, ""
		key.WriteString("nss=" + s.String())
	} else {
		key.WriteString("ns=" + ns)
	}
	key.WriteString("\x00")
	if np.PodSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(np.PodSelector)
		if err != nil {
			return nil, fmt.Errorf("podSelector: %w", err)
		}
		if !s.Empty() {
			p.podSelector = s
			key.WriteString(s.String())
		}
	}
	p.key = key.String()
	return p, nil
}

// parseIPBlock compiles an ipBlock. A block whose cidr or any except does
// not parse, or whose except is not inside the cidr, is dropped whole:
// ignoring only the except would open what the policy meant to keep out.
func parseIPBlock(b *networkingv1.IPBlock) (*peer, error) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return nil, fmt.Errorf("ipBlock cidr: %w", err)
	}
	cidr = cidr.Masked()
	p := &peer{cidr: cidr}
	for _, e := range b.Except {
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			return nil, fmt.Errorf("ipBlock except: %w", err)
		}
		ex = ex.Masked()
		if ex.Addr().BitLen() != cidr.Addr().BitLen() || ex.Bits() < cidr.Bits() || !cidr.Contains(ex.Addr()) {
			return nil, fmt.Errorf("ipBlock except %s is not inside %s", ex, cidr)
		}
		p.except = append(p.except, ex)
	}
	slices.SortFunc(p.except, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	p.except = slices.Compact(p.except)
	key := "ip\x00" + cidr.String()
	for _, e := range p.except {
		key += "\x00" + e.String()
	}
	p.key = key
	return p, nil
}

func protoNumber(p *corev1.Protocol) (uint8, corev1.Protocol, error) {
	name := corev1.ProtocolTCP
	if p != nil {
		name = *p
	}
	switch name {
	case corev1.ProtocolTCP:
		return model.ProtoTCP, name, nil
	case corev1.ProtocolUDP:
		return model.ProtoUDP, name, nil
	case corev1.ProtocolSCTP:
		return model.ProtoSCTP, name, nil
	}
	return 0, "", fmt.Errorf("unknown protocol %q", name)
}

func parsePort(pp networkingv1.NetworkPolicyPort) (portSpec, error) {
	proto, pname, err := protoNumber(pp.Protocol)
	if err != nil {
		return portSpec{}, err
	}
	s := portSpec{proto: proto, protocolName: pname, from: 0, to: 65535}
	if pp.Port == nil {
		if pp.EndPort != nil {
			return portSpec{}, fmt.Errorf("endPort %d without port", *pp.EndPort)
		}
		return s, nil
	}
	if pp.Port.Type == intstr.String {
		if pp.EndPort != nil {
			return portSpec{}, fmt.Errorf("endPort with the named port %q", pp.Port.StrVal)
		}
		if pp.Port.StrVal == "" {
			return portSpec{}, fmt.Errorf("empty port name")
		}
		s.name = pp.Port.StrVal
		return s, nil
	}
	if pp.Port.IntVal < 1 || pp.Port.IntVal > 65535 {
		return portSpec{}, fmt.Errorf("port %d out of range 1-65535", pp.Port.IntVal)
	}
	s.from, s.to = uint16(pp.Port.IntVal), uint16(pp.Port.IntVal)
	if pp.EndPort != nil {
		if *pp.EndPort < pp.Port.IntVal || *pp.EndPort > 65535 {
			return portSpec{}, fmt.Errorf("endPort %d not in %d-65535", *pp.EndPort, pp.Port.IntVal)
		}
		s.to = uint16(*pp.EndPort)
	}
	return s, nil
}

func sortedLabels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
		b.WriteByte(',')
	}
	return b.String()
}
