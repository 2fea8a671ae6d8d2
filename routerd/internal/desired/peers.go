package desired

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/routerd/internal/model"
	corev1 "k8s.io/api/core/v1"
)

// PeersInput is what the node's BGP configuration is computed from.
type PeersInput struct {
	// Node is this node's name.
	Node  string
	Nodes []*corev1.Node
	// ASN is the AS of a node without the ASN annotation.
	ASN uint32
	// FullMesh makes the nodes that are neither reflector nor client
	// peer with each other.
	FullMesh bool
	// NodePort is the port every node's speaker listens on (0: 179).
	NodePort uint16
	// Peers are the external peers of every node (flags).
	Peers []PeerSpec
	// Passwords are the MD5 passwords by Secret name (the Secrets of
	// routerd's namespace that have one).
	Passwords map[string]string
}

// PeersResult is the speaker's configuration.
type PeersResult struct {
	// Global has RouterID, ASN and ClusterID set (the caller adds what
	// comes from flags: listen port, graceful restart).
	Global   model.Global
	Peers    []model.Peer
	Problems []Problem
}

// Peers computes this node's speaker configuration; an error means the
// node cannot run BGP at all (its Node object is missing or has no IPv4
// address).
func Peers(in PeersInput) (PeersResult, error) {
	var ps problemList
	var local *corev1.Node
	for _, n := range in.Nodes {
		if n.Name == in.Node {
			local = n
		}
	}
	if local == nil {
		return PeersResult{}, fmt.Errorf("node %q not found", in.Node)
	}
	localIP, ok := NodeIPv4(local)
	if !ok {
		return PeersResult{}, fmt.Errorf("node %q has no IPv4 address in its status (the BGP router id)", in.Node)
	}
	me := roleOf(local, in.ASN, &ps)
	res := PeersResult{Global: model.Global{RouterID: localIP, ASN: me.asn, ClusterID: me.server, IPv6: dualStack(in.Nodes)}}
	seen := map[netip.Addr]string{localIP: "this node"}
	add := func(p model.Peer) {
		if by, dup := seen[p.Address]; dup {
			ps.node(in.Node, ReasonDuplicatePeer, "peer %s (%s) is already %s; ignored", p.Address, p.Name, by)
			return
		}
		seen[p.Address] = p.Name
		res.Peers = append(res.Peers, p)
	}

	others := slices.Clone(in.Nodes)
	slices.SortFunc(others, func(a, b *corev1.Node) int { return cmp.Compare(a.Name, b.Name) })
	for _, n := range others {
		if n == local {
			continue
		}
		// Every node's problems are reported by every routerd: the
		// reporter sends an event once per routerd, which is what
		// tells the operator the annotation is read cluster-wide.
		r := roleOf(n, in.ASN, &ps)
		peer, client := peersWith(me, r, in.FullMesh)
		if !peer {
			continue
		}
		ip, ok := NodeIPv4(n)
		if !ok {
			ps.node(n.Name, ReasonNoNodeIP, "node has no IPv4 address in its status: no BGP session with it")
			continue
		}
		add(model.Peer{Address: ip, ASN: r.asn, Port: in.NodePort, RRClient: client, Kind: model.NodePeer, Name: n.Name})
	}

	specs := slices.Clone(in.Peers)
	if s, ok := local.Annotations[AnnotationPeers]; ok {
		own, errs := ParsePeerSpecs(s)
		for _, err := range errs {
			ps.node(in.Node, ReasonBadAnnotation, "%s: %v", AnnotationPeers, err)
		}
		specs = append(specs, own...)
	}
	for _, s := range specs {
		p := model.Peer{Address: s.Address, ASN: s.ASN, Port: s.Port, HoldTime: s.HoldTime, Multihop: s.Multihop,
			Kind: model.ExternalPeer, Name: s.Address.String()}
		if s.PasswordSecret != "" {
			pw, ok := in.Passwords[s.PasswordSecret]
			if !ok {
				// Without its password the session could not come up
				// anyway; a peer left out is visible in status.
				ps.node(in.Node, ReasonNoPassword, "peer %s: Secret %q with key %q not found; peer left out", s.Address, s.PasswordSecret, PasswordKey)
				continue
			}
			p.Password = pw
		}
		add(p)
	}
	slices.SortFunc(res.Peers, func(a, b model.Peer) int { return a.Address.Compare(b.Address) })
	res.Problems = ps.list
	return res, nil
}

// PasswordKey is the key of a peer's password in its Secret.
const PasswordKey = "password"

// peersWith says whether a node of role me peers with one of role r, and
// whether r is then me's route-reflector client.
func peersWith(me, r role, fullMesh bool) (peer, client bool) {
	switch {
	case me.server.IsValid():
		if r.client.IsValid() {
			return r.client == me.server, r.client == me.server
		}
		return true, false // other reflectors and plain nodes
	case me.client.IsValid():
		return r.server == me.client, false
	case r.server.IsValid():
		return true, false
	case r.client.IsValid():
		return false, false
	}
	return fullMesh, false
}

// dualStack says whether a node of the cluster has an IPv6 pod CIDR: then
// the sessions carry IPv6 unicast too. (The CIDRs' problems are reported
// where the routes are computed.)
func dualStack(nodes []*corev1.Node) bool {
	for _, n := range nodes {
		cidrs, _ := PodCIDRs(n)
		for _, c := range cidrs {
			if c.Addr().Is6() {
				return true
			}
		}
	}
	return false
}
