package bgp

import (
	"context"
	"net/netip"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Router is routerd's BGP speaker port: routerd says what it wants (the
// speaker's own settings, its neighbours, the prefixes it originates) and
// reads back what it learned. Every setter is declarative: it takes the
// complete desired set and the implementation diffs against what it has
// configured, so the caller never tracks adds and withdrawals itself.
type Router interface {
	// Start starts the speaker with g (listening as g says). Calling Start
	// again with a different Global restarts the speaker (its sessions
	// reset) and re-applies the last peers and advertisements; with the
	// same Global it does nothing.
	Start(ctx context.Context, g model.Global) error
	// SetPeers makes the speaker's neighbours exactly peers: it adds the
	// new, deletes the gone and re-creates the changed ones (password, hold
	// time, multihop, port, RR client, ASN). A peer that is invalid is
	// reported in the error and left as it was; the others are applied.
	SetPeers(ctx context.Context, peers []model.Peer) error
	// SetAdvertisements makes the locally originated paths exactly
	// adverts, with nextHop as the next hop of the prefixes of its family
	// (IPv6 prefixes go over MP-BGP). An invalid nextHop makes the speaker
	// use each session's local address. Adverts it cannot announce are
	// reported in the error and not announced; the others are.
	SetAdvertisements(ctx context.Context, adverts []model.Advertisement, nextHop netip.Addr) error
	// Paths returns the best paths learned from peers (not the local
	// ones), sorted by prefix. The slice is the caller's.
	Paths() []model.Path
	// Changes is signalled (buffered 1, coalesced) whenever best paths or
	// a peer's state (session, End-of-RIB) changes.
	Changes() <-chan struct{}
	// Peers reports every configured neighbour's state, sorted by address.
	Peers(ctx context.Context) ([]model.PeerState, error)
	// Stop stops the speaker: every session is closed with a NOTIFICATION
	// (see the package doc for what peers do then). The desired peers and
	// advertisements are kept for a later Start.
	Stop() error
}

var (
	_ Router = (*Speaker)(nil)
	_ Router = (*Fake)(nil)
)

// signal wakes the reader of a Changes channel without ever blocking: one
// pending signal stands for any number of changes.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
