// Package coord is the coordination between the daemons of one node: a
// Publisher serves the facts a daemon owns (nodenet.node.v1.FactsService), a
// Watcher follows a peer's facts over its socket and keeps the last ones it
// saw while the peer is gone (DESIGN.md: nothing in the datapath changes
// because a neighbour restarted).
package coord

import (
	"maps"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"google.golang.org/protobuf/proto"
)

// VIPKey identifies a service VIP; it is the comparable form of
// nodev1.ServiceVIPKey.
type VIPKey struct {
	IP       string
	Port     uint32
	Protocol nodev1.Protocol
}

// KeyOf returns the key of a VIP.
func KeyOf(v *nodev1.ServiceVIP) VIPKey { return keyFromProto(v.GetKey()) }

func keyFromProto(k *nodev1.ServiceVIPKey) VIPKey {
	return VIPKey{IP: k.GetIp(), Port: k.GetPort(), Protocol: k.GetProtocol()}
}

func (k VIPKey) proto() *nodev1.ServiceVIPKey {
	return &nodev1.ServiceVIPKey{Ip: k.IP, Port: k.Port, Protocol: k.Protocol}
}

// Facts is what is known of one publisher at one generation. A Facts value
// is never modified after it is handed out: Apply returns a new one.
type Facts struct {
	Publisher   string
	Incarnation string
	Generation  uint64
	// Known is false until the first snapshot arrived.
	Known       bool
	PodNetwork  *nodev1.PodNetwork
	PolicyState *nodev1.PolicyState
	VIPs        map[VIPKey]*nodev1.ServiceVIP
}

// Apply returns the facts after msg. A snapshot replaces everything; a change
// replaces the messages it carries and adds or removes the VIPs it names.
func (f Facts) Apply(msg *nodev1.WatchResponse) Facts {
	next := Facts{
		Publisher:   msg.GetPublisher(),
		Incarnation: msg.GetIncarnation(),
		Generation:  msg.GetGeneration(),
		Known:       true,
	}
	if msg.GetSnapshot() {
		next.VIPs = make(map[VIPKey]*nodev1.ServiceVIP, len(msg.GetVipsSet()))
	} else {
		next.PodNetwork, next.PolicyState = f.PodNetwork, f.PolicyState
		next.VIPs = maps.Clone(f.VIPs)
		if next.VIPs == nil {
			next.VIPs = map[VIPKey]*nodev1.ServiceVIP{}
		}
	}
	if msg.PodNetwork != nil {
		next.PodNetwork = msg.GetPodNetwork()
	}
	if msg.PolicyState != nil {
		next.PolicyState = msg.GetPolicyState()
	}
	for _, k := range msg.GetVipsDeleted() {
		delete(next.VIPs, keyFromProto(k))
	}
	for _, v := range msg.GetVipsSet() {
		next.VIPs[KeyOf(v)] = v
	}
	return next
}

// Snapshot renders f as one snapshot message.
func (f Facts) Snapshot() *nodev1.WatchResponse {
	msg := &nodev1.WatchResponse{
		Publisher:   f.Publisher,
		Incarnation: f.Incarnation,
		Generation:  f.Generation,
		Snapshot:    true,
		PodNetwork:  f.PodNetwork,
		PolicyState: f.PolicyState,
	}
	msg.VipsSet = sortedVIPs(f.VIPs)
	return msg
}

// Equal reports whether two facts hold the same data (generation and
// incarnation aside).
func (f Facts) Equal(g Facts) bool {
	return proto.Equal(f.PodNetwork, g.PodNetwork) && proto.Equal(f.PolicyState, g.PolicyState) &&
		maps.EqualFunc(f.VIPs, g.VIPs, func(a, b *nodev1.ServiceVIP) bool { return proto.Equal(a, b) })
}
