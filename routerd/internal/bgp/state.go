package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Peers is part of Router.
func (s *Speaker) Peers(ctx context.Context) ([]model.PeerState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil, nil
	}
	var aps []*api.Peer
	// EnableAdvertised makes GoBGP compute what it would send each peer
	// (its Adj-RIB-Out is not stored): the price of the Advertised count.
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) { aps = append(aps, p) })
	if err != nil {
		return nil, fmt.Errorf("listing BGP peers: %w", err)
	}
	out := make([]model.PeerState, 0, len(aps))
	for _, ap := range aps {
		addr, err := netip.ParseAddr(ap.GetConf().GetNeighborAddress())
		if err != nil {
			continue
		}
		p, ok := s.peers[addr]
		if !ok { // not ours: cannot happen, but report what GoBGP knows
			p = model.Peer{Address: addr, ASN: ap.GetConf().GetPeerAsn()}
		}
		ev, _ := s.table.peer(addr)
		out = append(out, peerState(p, ap, ev, s.global.GracefulRestart > 0))
	}
	slices.SortFunc(out, func(a, b model.PeerState) int { return a.Address.Compare(b.Address) })
	return out, nil
}

// peerState reports neighbour p from GoBGP's view of it (ap) and from what
// the event stream said (ev); grConfigured says this speaker offers
// graceful restart.
func peerState(p model.Peer, ap *api.Peer, ev peerEvents, grConfigured bool) model.PeerState {
	st := model.PeerState{Peer: p, State: sessionState(ap.GetState().GetSessionState())}
	established := st.State == stateEstablished
	switch {
	case ev.state == st.State && !ev.since.IsZero():
		st.Since = ev.since
	case established && ap.GetTimers().GetState().GetUptime() != nil:
		st.Since = ap.GetTimers().GetState().GetUptime().AsTime()
	case !established && ap.GetTimers().GetState().GetDowntime() != nil:
		st.Since = ap.GetTimers().GetState().GetDowntime().AsTime()
	}
	// The remote capabilities are those of the peer's last OPEN: they
	// describe the session only while it is up.
	remoteGR, families := remoteCapabilities(ap.GetState().GetRemoteCap())
	st.GracefulRestart = established && grConfigured && remoteGR
	for _, af := range ap.GetAfiSafis() {
		as := af.GetState()
		st.Received += as.GetReceived()
		st.Accepted += as.GetAccepted()
		if established {
			adv := as.GetAdvertised()
			// GoBGP counts the End-of-RIB marker it would send along
			// with the paths when graceful restart is on.
			if st.GracefulRestart && adv > 0 {
				adv--
			}
			st.Advertised += adv
		}
	}
	if established && ev.state == stateEstablished {
		st.EndOfRIB = true
		for afi := range families {
			st.EndOfRIB = st.EndOfRIB && ev.eor[afi]
		}
	}
	return st
}

// remoteCapabilities reads a peer's OPEN capabilities: whether it offers
// graceful restart, and the unicast address families (AFIs) it offers,
// which are the ones the session carries since this speaker configures
// both. RFC 4760: a peer that sends no multiprotocol capability speaks
// IPv4 unicast only.
func remoteCapabilities(caps []*anypb.Any) (gr bool, families map[api.Family_Afi]bool) {
	families = make(map[api.Family_Afi]bool, 2)
	mp := false
	for _, c := range caps {
		switch {
		case c.MessageIs((*api.GracefulRestartCapability)(nil)):
			gr = true
		case c.MessageIs((*api.MultiProtocolCapability)(nil)):
			mp = true
			var m api.MultiProtocolCapability
			if c.UnmarshalTo(&m) != nil {
				continue
			}
			f := m.GetFamily()
			if f.GetSafi() == api.Family_SAFI_UNICAST && (f.GetAfi() == api.Family_AFI_IP || f.GetAfi() == api.Family_AFI_IP6) {
				families[f.GetAfi()] = true
			}
		}
	}
	if !mp {
		families[api.Family_AFI_IP] = true
	}
	return gr, families
}
