//go:build kernel

package bgp

import (
	"net/netip"
	"testing"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// A router outside the cluster learns from a node only what the node
// originates, not what it learned from the other nodes; the nodes still
// learn everything from each other.
func TestKernelExternalPeerGetsOnlyOwnRoutes(t *testing.T) {
	requireNetns(t)
	const a, b, ext = "198.18.0.1", "198.18.0.2", "198.18.0.9"
	addLo(t, a, b, ext)
	sa, sb := startSpeaker(t, globalAt(a)), startSpeaker(t, globalAt(b))
	ge := globalAt(ext)
	ge.ASN = 65001
	se := startSpeaker(t, ge)
	advertise(t, sa, a, "198.19.1.0/24")
	advertise(t, sb, b, "198.19.2.0/24")
	setPeers(t, sa, nodePeer(b), model.Peer{Address: netip.MustParseAddr(ext), ASN: 65001, Kind: model.ExternalPeer, Name: "router"})
	setPeers(t, sb, nodePeer(a))
	setPeers(t, se, model.Peer{Address: netip.MustParseAddr(a), ASN: testASN, Kind: model.ExternalPeer, Name: "node-a"})

	waitUntil(t, sa, sessionTimeout, "a learns b's prefix", havePaths(sa, path("198.19.2.0/24", b, b)))
	waitUntil(t, se, sessionTimeout, "the router learns a's prefix", havePaths(se, path("198.19.1.0/24", a, a)))
	// An update a sends the router after it learned b's prefix: had b's
	// prefix been exported, it would be there first.
	advertise(t, sa, a, "198.19.1.0/24", "198.19.3.0/24")
	waitUntil(t, se, sessionTimeout, "the router learns a's second prefix, and nothing of b",
		havePaths(se, path("198.19.1.0/24", a, a), path("198.19.3.0/24", a, a)))
	waitUntil(t, sb, sessionTimeout, "b learns both of a's prefixes",
		havePaths(sb, path("198.19.1.0/24", a, a), path("198.19.3.0/24", a, a)))

	// The peer leaves the set with the session: re-added as a node, it
	// gets everything again (iBGP rules aside, a node peer is not
	// filtered).
	setPeers(t, sa, nodePeer(b))
	if len(sa.externalSet) != 0 {
		t.Errorf("neighbour set after the external peer left: %v", sa.externalSet)
	}
}
