package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"go.uber.org/zap"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

const (
	// connectRetry is how often a neighbour that is not up is dialled.
	// GoBGP's default (120 s, plus up to as much again of jitter) would
	// leave a peer whose first dial failed because it was restarting
	// unconnected for minutes; a TCP SYN every few seconds costs nothing.
	connectRetry = 5 * time.Second
	// maxDeferral bounds how long a restarted speaker holds its UPDATEs
	// back while it waits for End-of-RIB from a peer (see the package doc):
	// a peer that negotiated graceful restart sends it right after its
	// table, so only a broken one makes us wait this long.
	maxDeferral = 30 * time.Second
	// maxRestartTime is the largest restart time the graceful restart
	// capability can carry (12 bits of seconds). GoBGP does not clamp it:
	// a larger value would spill into the capability's flag bits.
	maxRestartTime = 4095 * time.Second
	// maxPasswordLen is the kernel's limit on a TCP MD5 key
	// (TCP_MD5SIG_MAXKEYLEN).
	maxPasswordLen = 80
)

// peerPlan is what SetPeers does to the configured neighbours.
type peerPlan struct {
	Add    []model.Peer
	Delete []model.Peer // as they were configured
	// Replace holds the peers whose session settings changed: they are
	// deleted and added again, which resets the session. GoBGP's
	// UpdatePeer ignores some settings (route-reflector client) and
	// applies others only from the next session (hold time), so a
	// re-creation is the one way that applies every change at once.
	Replace []peerChange
	// Rename holds the peers of which only Name changed: the session is
	// left alone.
	Rename []model.Peer
}

type peerChange struct{ Old, New model.Peer }

// planPeers compares the configured neighbours with the wanted ones. An
// invalid wanted peer is reported and leaves its address as it was (a typo
// in one setting does not drop a working session); a duplicate address is
// reported and the first one wins.
func planPeers(g model.Global, have map[netip.Addr]model.Peer, want []model.Peer) (peerPlan, error) {
	var (
		plan peerPlan
		errs []error
		seen = make(map[netip.Addr]bool, len(want))
	)
	for _, p := range want {
		if err := validatePeer(g, p); err != nil {
			errs = append(errs, fmt.Errorf("peer %s: %w", peerName(p), err))
			if p.Address.IsValid() {
				seen[p.Address] = true
			}
			continue
		}
		if seen[p.Address] {
			errs = append(errs, fmt.Errorf("peer %s: address listed twice", peerName(p)))
			continue
		}
		seen[p.Address] = true
		old, ok := have[p.Address]
		switch {
		case !ok:
			plan.Add = append(plan.Add, p)
		case sessionOf(old) != sessionOf(p):
			plan.Replace = append(plan.Replace, peerChange{Old: old, New: p})
		case old != p:
			plan.Rename = append(plan.Rename, p)
		}
	}
	for addr, old := range have {
		if !seen[addr] {
			plan.Delete = append(plan.Delete, old)
		}
	}
	byAddr := func(a, b model.Peer) int { return a.Address.Compare(b.Address) }
	slices.SortFunc(plan.Add, byAddr)
	slices.SortFunc(plan.Delete, byAddr)
	slices.SortFunc(plan.Rename, byAddr)
	slices.SortFunc(plan.Replace, func(a, b peerChange) int { return byAddr(a.New, b.New) })
	return plan, errors.Join(errs...)
}

// apply returns the configured neighbours once every step of the plan
// succeeded (what the fake keeps).
func (p peerPlan) apply(have map[netip.Addr]model.Peer) map[netip.Addr]model.Peer {
	out := make(map[netip.Addr]model.Peer, len(have)+len(p.Add))
	for a, peer := range have {
		out[a] = peer
	}
	for _, peer := range p.Delete {
		delete(out, peer.Address)
	}
	for _, peer := range slices.Concat(p.Add, p.Rename) {
		out[peer.Address] = peer
	}
	for _, c := range p.Replace {
		out[c.New.Address] = c.New
	}
	return out
}

// sessionOf is the part of a peer that the session depends on: a change
// of Name alone does not reset it. (Kind does count: it decides which side
// of the session dials, see waitsForPeer.)
func sessionOf(p model.Peer) model.Peer {
	p.Name = ""
	return p
}

func peerName(p model.Peer) string {
	switch {
	case p.Name != "" && p.Address.IsValid():
		return fmt.Sprintf("%s (%s)", p.Address, p.Name)
	case p.Name != "":
		return p.Name
	}
	return p.Address.String()
}

// validatePeer says why GoBGP could not (or should not) be given p.
func validatePeer(g model.Global, p model.Peer) error {
	a := p.Address
	switch {
	case !a.IsValid():
		return errors.New("no valid address")
	case a.IsUnspecified(), a.IsMulticast(), a.Is4In6():
		return fmt.Errorf("address %s is not a unicast address", a)
	case p.ASN == 0:
		return errors.New("AS number 0")
	case p.HoldTime != 0 && (p.HoldTime < 3*time.Second || p.HoldTime > 65535*time.Second):
		// RFC 4271 4.2: zero or at least three seconds, in 16 bits.
		return fmt.Errorf("hold time %v is not 0 or 3s..65535s", p.HoldTime)
	case len(p.Password) > maxPasswordLen:
		return fmt.Errorf("MD5 password longer than %d bytes", maxPasswordLen)
	case p.RRClient && p.ASN != g.ASN:
		return fmt.Errorf("route-reflector client in AS %d, not in the local AS %d", p.ASN, g.ASN)
	}
	return nil
}

// peerToAPI converts p into GoBGP's neighbour configuration. restarting
// sets the Restart State bit and the forwarding-state bits in the OPEN (see
// the package doc).
func peerToAPI(g model.Global, p model.Peer, restarting bool) (*api.Peer, error) {
	if err := validatePeer(g, p); err != nil {
		return nil, err
	}
	gr := g.GracefulRestart > 0
	ap := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: p.Address.String(),
			PeerAsn:         p.ASN,
			AuthPassword:    p.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: uint64(connectRetry / time.Second),
		}},
		Transport: &api.Transport{
			RemotePort:   uint32(p.Port),
			LocalAddress: addrString(listenAddressFor(g, p.Address)), // "": any
			PassiveMode:  waitsForPeer(g, p),
		},
	}
	if p.HoldTime > 0 {
		hold := uint64(p.HoldTime / time.Second)
		ap.Timers.Config.HoldTime = hold
		ap.Timers.Config.KeepaliveInterval = max(hold/3, 1)
	}
	if p.ASN != g.ASN && p.Multihop > 0 {
		ap.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	if p.RRClient {
		ap.RouteReflector = &api.RouteReflector{RouteReflectorClient: true}
		// Without a cluster ID GoBGP uses the router ID, the usual
		// choice of a lone reflector.
		if g.ClusterID.IsValid() {
			ap.RouteReflector.RouteReflectorClusterId = g.ClusterID.String()
		}
	}
	if gr {
		restart := min(max(g.GracefulRestart, time.Second), maxRestartTime)
		ap.GracefulRestart = &api.GracefulRestart{
			Enabled:         true,
			RestartTime:     uint32(restart / time.Second),
			DeferralTime:    uint32(min(restart, maxDeferral) / time.Second),
			LocalRestarting: restarting,
		}
	}
	// IPv4 unicast on every session; IPv6 unicast too in a dual-stack
	// cluster (IPv6 prefixes travel over an IPv4 session with MP-BGP) and
	// with a peer reached over IPv6. Not always both: GoBGP sends an
	// End-of-RIB for every configured family, even one the peer did not
	// negotiate, which BIRD logs ("Unexpected AF") and a strict router may
	// answer with a NOTIFICATION.
	families := []*api.Family{familyIPv4}
	if g.IPv6 || p.Address.Is6() {
		families = append(families, familyIPv6)
	}
	for _, f := range families {
		ap.AfiSafis = append(ap.AfiSafis, &api.AfiSafi{
			Config:            &api.AfiSafiConfig{Family: f, Enabled: true},
			MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: gr}},
		})
	}
	return ap, nil
}

// listenAddressFor is the address the speaker dials addr from, if it must
// be a given one. When the speaker listens on given addresses only, it
// also dials from the one of addr's family, so that the neighbour sees the
// same address whichever side opens the connection (GoBGP rejects an
// inbound connection that reaches a local address other than the
// configured one). Otherwise (invalid) the kernel picks the source.
func listenAddressFor(g model.Global, addr netip.Addr) netip.Addr {
	for _, la := range g.ListenAddresses {
		if la.Is4() == addr.Is4() && !la.IsUnspecified() {
			return la
		}
	}
	return netip.Addr{}
}

// waitsForPeer says this speaker leaves the dialling to neighbour p: of
// two nodes, only the one with the higher address dials.
//
// When both sides dial, connection attempts fail now and then (a
// collision, or a dial that reaches the other side during its idle hold
// time after a session loss, which it answers by closing the
// connection). Usually that only delays the session by a retry, but a
// GoBGP that keeps a restarting peer's routes treats any session attempt
// that fails during the restart as the end of the restart time and drops
// those routes at once (server.go, handleFSMMessage: every change to idle
// while PeerRestarting). With one dialling side, the keeper of the routes
// either dials a peer that is not listening yet (refused: no state
// change) or waits, and closing a connection while idle changes nothing
// either.
//
// Only for nodes, which all follow this rule and know each other by the
// address they speak from: the listen address of the peer's family, else
// the router ID. Routers outside the cluster are always dialled, and a
// speaker that does not listen always dials.
func waitsForPeer(g model.Global, p model.Peer) bool {
	if p.Kind != model.NodePeer || g.ListenPort < 0 {
		return false
	}
	self := selfAddress(g, p.Address)
	return self.IsValid() && self.Less(p.Address)
}

// selfAddress is the address this speaker speaks to addr from, as far as
// its configuration says: the listen address of addr's family, or the
// router ID for an IPv4 peer.
func selfAddress(g model.Global, addr netip.Addr) netip.Addr {
	if la := listenAddressFor(g, addr); la.IsValid() {
		return la
	}
	if addr.Is4() && g.RouterID.Is4() {
		return g.RouterID
	}
	return netip.Addr{}
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

var (
	familyIPv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyIPv6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

// SetPeers is part of Router.
func (s *Speaker) SetPeers(ctx context.Context, peers []model.Peer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wantPeers = slices.Clone(peers)
	if s.srv == nil {
		return nil // applied by Start
	}
	return s.applyPeersLocked(ctx)
}

func (s *Speaker) applyPeersLocked(ctx context.Context) error {
	plan, err := planPeers(s.global, s.peers, s.wantPeers)
	errs := []error{err}
	// The first neighbours configured after Start are the ones that may
	// hold our routes from before a restart: tell them we restarted.
	// (routerd configures its peers once its informers have synced, so
	// the first set is complete.)
	restarting := s.firstPeers && s.global.GracefulRestart > 0
	if len(plan.Add) > 0 {
		s.firstPeers = false
	}
	// The export policy knows an external peer before it is added, and
	// until it is gone.
	wantExt := externalNeighbours(s.wantPeers)
	errs = append(errs, s.syncExternalSetLocked(ctx, union(s.externalSet, wantExt)))
	for _, p := range plan.Delete {
		errs = append(errs, s.deletePeerLocked(ctx, p))
	}
	for _, c := range plan.Replace {
		if err := s.deletePeerLocked(ctx, c.Old); err != nil {
			errs = append(errs, err)
			continue
		}
		// The old session ended with a NOTIFICATION, so the peer
		// dropped our routes: nothing to preserve.
		errs = append(errs, s.addPeerLocked(ctx, c.New, false))
	}
	for _, p := range plan.Add {
		errs = append(errs, s.addPeerLocked(ctx, p, restarting))
	}
	for _, p := range plan.Rename {
		s.peers[p.Address] = p
	}
	errs = append(errs, s.syncExternalSetLocked(ctx, wantExt))
	return errors.Join(errs...)
}

func (s *Speaker) addPeerLocked(ctx context.Context, p model.Peer, restarting bool) error {
	ap, err := peerToAPI(s.global, p, restarting)
	if err == nil {
		err = s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: ap})
	}
	if err != nil {
		return fmt.Errorf("peer %s: %w", peerName(p), err)
	}
	s.peers[p.Address] = p
	s.log.Debug("BGP peer added", zap.Stringer("peer", p.Address), zap.Uint32("asn", p.ASN))
	return nil
}

func (s *Speaker) deletePeerLocked(ctx context.Context, old model.Peer) error {
	if old.Password != "" {
		// GoBGP's DeletePeer leaves the peer's MD5 key on the listening
		// socket, so a later passive session from that address without
		// a password (or after the peer is re-added without one) is
		// dropped by the kernel. UpdatePeer to the same peer without a
		// password does clear the key (it deletes the neighbour with its
		// old configuration, then adds the new one); the delete follows.
		noPass := old
		noPass.Password = ""
		if ap, err := peerToAPI(s.global, noPass, false); err == nil {
			if _, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: ap}); err != nil {
				s.log.Debug("clearing the MD5 key of a peer before deleting it", zap.Stringer("peer", old.Address), zap.Error(err))
			}
		}
	}
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: old.Address.String()}); err != nil {
		return fmt.Errorf("deleting peer %s: %w", peerName(old), err)
	}
	delete(s.peers, old.Address)
	s.table.forgetPeer(old.Address)
	s.log.Debug("BGP peer deleted", zap.Stringer("peer", old.Address))
	return nil
}

// union is a and b, sorted, without duplicates.
func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
