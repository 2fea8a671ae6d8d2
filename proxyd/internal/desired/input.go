package desired

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Node is what the desired state needs to know of this node.
type Node struct {
	Name string
	// Zone is the node's topology.kubernetes.io/zone label ("" when unset).
	Zone string
	// IPs are the addresses NodePorts are served on.
	IPs []netip.Addr
}

// Input is everything the desired state is computed from.
type Input struct {
	Services []*corev1.Service
	// Slices are the EndpointSlices of each Service, by Service name (the
	// kubernetes.io/service-name label).
	Slices map[types.NamespacedName][]*discoveryv1.EndpointSlice
	Node   Node
}

// Config holds proxyd's settings that shape the desired state.
type Config struct {
	// DefaultScheduler is the IPVS scheduler of Services without the
	// annotation; "rr" when empty.
	DefaultScheduler string
}

// Problem is one piece of bad input that was skipped.
type Problem struct {
	// Kind is "Service" or "EndpointSlice".
	Kind   string
	Object types.NamespacedName
	// Reason is a CamelCase word for events and metrics.
	Reason  string
	Message string
}
