package desired

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
)

// Annotations routerd reads on Node objects (see the package comment).
const (
	AnnotationASN      = "nodenet.io/bgp-asn"
	AnnotationRRServer = "nodenet.io/bgp-rr-server"
	AnnotationRRClient = "nodenet.io/bgp-rr-client"
	AnnotationPeers    = "nodenet.io/bgp-peers"
)

// NodeIPs are a node's addresses, InternalIP before ExternalIP, IPv4
// before IPv6 within each, without duplicates; malformed ones skipped.
func NodeIPs(n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		var v4, v6 []netip.Addr
		for _, a := range n.Status.Addresses {
			if a.Type != t {
				continue
			}
			ip, err := netip.ParseAddr(a.Address)
			if err != nil || ip.Zone() != "" {
				continue
			}
			ip = ip.Unmap()
			if slices.Contains(out, ip) || slices.Contains(v4, ip) || slices.Contains(v6, ip) {
				continue
			}
			if ip.Is4() {
				v4 = append(v4, ip)
			} else {
				v6 = append(v6, ip)
			}
		}
		out = append(append(out, v4...), v6...)
	}
	return out
}

// NodeIPv4 is the node's first IPv4 address (its BGP router id and the
// address it peers on).
func NodeIPv4(n *corev1.Node) (netip.Addr, bool) {
	for _, ip := range NodeIPs(n) {
		if ip.Is4() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// PodCIDRs are a node's spec.podCIDRs (spec.podCIDR when the list is
// empty, as old clusters set it), at most one per family, canonical.
func PodCIDRs(n *corev1.Node) ([]netip.Prefix, []Problem) {
	var ps problemList
	in := n.Spec.PodCIDRs
	if len(in) == 0 && n.Spec.PodCIDR != "" {
		in = []string{n.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			ps.node(n.Name, ReasonBadPodCIDR, "pod CIDR %q: %v", s, err)
			continue
		}
		p = p.Masked()
		if slices.ContainsFunc(out, func(q netip.Prefix) bool { return q.Addr().Is4() == p.Addr().Is4() }) {
			ps.node(n.Name, ReasonBadPodCIDR, "pod CIDR %s: a second one of its family is ignored", p)
			continue
		}
		out = append(out, p)
	}
	return out, ps.list
}

// role is a node's place in the BGP topology.
type role struct {
	asn uint32
	// server and client hold a cluster id (zero: not that role).
	server, client netip.Addr
}

// roleOf reads the ASN and route-reflector annotations of n; a bad one is
// a problem and counts as absent (every node reads it the same way, so
// the two ends of a session still agree).
func roleOf(n *corev1.Node, defaultASN uint32, ps *problemList) role {
	r := role{asn: defaultASN}
	if s, ok := n.Annotations[AnnotationASN]; ok {
		if asn, err := ParseASN(s); err != nil {
			ps.node(n.Name, ReasonBadAnnotation, "%s: %v; using AS %d", AnnotationASN, err, defaultASN)
		} else {
			r.asn = asn
		}
	}
	for _, a := range []struct {
		key string
		to  *netip.Addr
	}{{AnnotationRRServer, &r.server}, {AnnotationRRClient, &r.client}} {
		s, ok := n.Annotations[a.key]
		if !ok {
			continue
		}
		id, err := ParseClusterID(s)
		if err != nil {
			ps.node(n.Name, ReasonBadAnnotation, "%s: %v", a.key, err)
			continue
		}
		*a.to = id
	}
	if r.server.IsValid() && r.client.IsValid() {
		ps.node(n.Name, ReasonBadAnnotation, "both %s and %s: the node is taken as a reflector", AnnotationRRServer, AnnotationRRClient)
		r.client = netip.Addr{}
	}
	return r
}

// ParseClusterID parses a route-reflector cluster id: an IPv4 address or
// a number (as kube-router takes it).
func ParseClusterID(s string) (netip.Addr, error) {
	if ip, err := netip.ParseAddr(s); err == nil && ip.Is4() {
		if ip.IsUnspecified() {
			return netip.Addr{}, fmt.Errorf("cluster id 0.0.0.0")
		}
		return ip, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return netip.Addr{}, fmt.Errorf("cluster id %q is neither an IPv4 address nor a number from 1", s)
	}
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), nil
}

// CIDRSource says where the node's pod CIDRs came from.
type CIDRSource uint8

// The sources of pod CIDRs.
const (
	FromNodeSpec CIDRSource = iota + 1
	FromCNIConfig
)

func (s CIDRSource) String() string {
	switch s {
	case FromNodeSpec:
		return "Node spec.podCIDRs"
	case FromCNIConfig:
		return "existing CNI config"
	}
	return "none"
}

// LocalPodCIDRs are this node's pod CIDRs: the Node's spec.podCIDRs, or
// when it has none, those of the CNI config found on the node (fromCNI:
// what the node's CNI config directory holds, routerd's own file
// included, so that a node keeps its CIDR when the API loses it). Neither
// is an error: pods cannot get addresses.
func LocalPodCIDRs(n *corev1.Node, fromCNI []netip.Prefix) ([]netip.Prefix, CIDRSource, []Problem, error) {
	cidrs, ps := PodCIDRs(n)
	if len(cidrs) > 0 {
		return cidrs, FromNodeSpec, ps, nil
	}
	var out []netip.Prefix
	for _, p := range fromCNI {
		p = p.Masked()
		if !slices.ContainsFunc(out, func(q netip.Prefix) bool { return q.Addr().Is4() == p.Addr().Is4() }) {
			out = append(out, p)
		}
	}
	if len(out) > 0 {
		return out, FromCNIConfig, ps, nil
	}
	return nil, 0, ps, fmt.Errorf("node %q has no spec.podCIDRs and no CNI config on the node names a pod CIDR (is kube-controller-manager allocating node CIDRs?)", n.Name)
}
