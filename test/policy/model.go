package policy

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Port is a protocol and port number every pod serves an echo on: one
// layer of the reachability matrix.
type Port struct {
	Protocol corev1.Protocol
	Number   int32
}

// TCP, UDP and SCTP make Ports.
func TCP(n int32) Port  { return Port{corev1.ProtocolTCP, n} }
func UDP(n int32) Port  { return Port{corev1.ProtocolUDP, n} }
func SCTP(n int32) Port { return Port{corev1.ProtocolSCTP, n} }

// ServedPorts are the ports every pod, node and the world client serve, in
// the order the matrix shows them.
func ServedPorts() []Port {
	return []Port{TCP(80), TCP(81), UDP(80), UDP(81), SCTP(80), SCTP(81)}
}

func (p Port) String() string {
	return fmt.Sprintf("%s/%d", strings.ToLower(string(p.Protocol)), p.Number)
}

// ContainerPortName is the name the pods give the port in their container
// ports ("serve-80-tcp"), the names named-port policies refer to.
func (p Port) ContainerPortName() string {
	return fmt.Sprintf("serve-%d-%s", p.Number, strings.ToLower(string(p.Protocol)))
}

// PeerKind tells the rows and columns of a matrix apart.
type PeerKind uint8

// The kinds of peers.
const (
	// PodPeer is a pod of the model.
	PodPeer PeerKind = iota + 1
	// WorldPeer is the client outside the cluster, what ipBlock peers
	// are for.
	WorldPeer
	// NodePeer is the node of the pod at the other end of the cell: as a
	// source, the kubelet probing its own pod; as a destination, the
	// pod's own node. Kubernetes always allows both.
	NodePeer
)

// Peer is a row (source) or column (destination) of a matrix.
type Peer struct {
	Kind      PeerKind
	Namespace string // pods only
	Name      string // pods only
}

// Pod is the pod name in namespace ns.
func Pod(ns, name string) Peer { return Peer{Kind: PodPeer, Namespace: ns, Name: name} }

// World is the client outside the cluster.
func World() Peer { return Peer{Kind: WorldPeer} }

// OwnNode is the node of the pod at the other end of a cell.
func OwnNode() Peer { return Peer{Kind: NodePeer} }

// IsPod reports whether p is a pod.
func (p Peer) IsPod() bool { return p.Kind == PodPeer }

func (p Peer) String() string {
	switch p.Kind {
	case PodPeer:
		return p.Namespace + "/" + p.Name
	case WorldPeer:
		return "world"
	case NodePeer:
		return "node"
	}
	return "?"
}

// Model is the cluster a matrix covers: every namespace holds a pod of
// every name (x/a, x/b, ... z/c), as in the upstream Kubernetes
// NetworkPolicy tests.
type Model struct {
	Namespaces []string
	PodNames   []string
}

// DefaultModel is namespaces x, y, z with pods a, b, c each.
func DefaultModel() Model {
	return Model{Namespaces: []string{"x", "y", "z"}, PodNames: []string{"a", "b", "c"}}
}

// Pods are the model's pods, namespace by namespace.
func (m Model) Pods() []Peer {
	var ps []Peer
	for _, ns := range m.Namespaces {
		for _, n := range m.PodNames {
			ps = append(ps, Pod(ns, n))
		}
	}
	return ps
}

// Sources are the rows of a matrix: the pods, the world client, and the
// kubelet (the destination pod's own node).
func (m Model) Sources() []Peer { return append(m.Pods(), World(), OwnNode()) }

// Destinations are the columns of a matrix: the pods, the world client, and
// the source pod's own node.
func (m Model) Destinations() []Peer { return append(m.Pods(), World(), OwnNode()) }

// IsCell reports whether from → to is a cell of a matrix: at least one end
// is a pod (the world's and the nodes' traffic between themselves is no
// NetworkPolicy's business).
func IsCell(from, to Peer) bool { return from.IsPod() || to.IsPod() }
