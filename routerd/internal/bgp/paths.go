package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// table keeps what GoBGP's event stream reports: the best path of every
// prefix learned from a peer, and each peer's session state and
// End-of-RIB markers. One WatchEvent stream carries them all, in the order
// GoBGP produced them, so a session coming up always precedes the
// End-of-RIB of that session.
type table struct {
	changes chan struct{}

	mu sync.Mutex
	// gen numbers the stream: Start and Stop move to a new one, and events
	// still in flight from the old stream are dropped.
	gen    uint64
	paths  map[netip.Prefix]model.Path
	sorted []model.Path // what Paths returns; nil once paths changed
	peers  map[netip.Addr]*peerEvents
}

// peerEvents is what the event stream said about one neighbour.
type peerEvents struct {
	state string    // model.PeerState.State
	since time.Time // when the session entered state
	// eor holds the address families (AFI) whose End-of-RIB arrived
	// since the session came up. GoBGP's own EndOfRibReceived flag is no
	// substitute: a restarting GoBGP sets it without any End-of-RIB when
	// the peer's OPEN has the Restart State bit (to skip waiting), which
	// would let routerd prune kernel routes before the routes are in.
	eor map[api.Family_Afi]bool
}

func newTable(changes chan struct{}) *table {
	return &table{
		changes: changes,
		paths:   make(map[netip.Prefix]model.Path),
		peers:   make(map[netip.Addr]*peerEvents),
	}
}

// reset forgets everything and starts a new stream, whose number it
// returns.
func (t *table) reset() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen++
	if len(t.paths) > 0 || len(t.peers) > 0 {
		t.paths = make(map[netip.Prefix]model.Path)
		t.peers = make(map[netip.Addr]*peerEvents)
		t.sorted = nil
		signal(t.changes)
	}
	return t.gen
}

// handle applies one event of stream gen; it runs on GoBGP's watch
// goroutine, so it only updates memory and never calls GoBGP.
func (t *table) handle(gen uint64, ev *api.WatchEventResponse) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if gen != t.gen {
		return
	}
	changed := false
	if pe := ev.GetPeer(); pe != nil {
		changed = t.peerEventLocked(pe, time.Now())
	}
	for _, p := range ev.GetTable().GetPaths() {
		if p.GetNlri() == nil {
			changed = t.endOfRIBLocked(p) || changed
			continue
		}
		changed = t.bestPathLocked(p) || changed
	}
	if changed {
		signal(t.changes)
	}
}

func (t *table) peerEventLocked(pe *api.WatchEventResponse_PeerEvent, now time.Time) bool {
	switch pe.GetType() {
	case api.WatchEventResponse_PeerEvent_INIT, api.WatchEventResponse_PeerEvent_STATE:
	default:
		return false
	}
	addr, err := netip.ParseAddr(pe.GetPeer().GetState().GetNeighborAddress())
	if err != nil {
		return false
	}
	state := sessionState(pe.GetPeer().GetState().GetSessionState())
	e := t.peers[addr]
	if e == nil {
		e = &peerEvents{}
		t.peers[addr] = e
	}
	if e.state == state {
		return false
	}
	e.state, e.since = state, now
	e.eor = nil
	if state == stateEstablished {
		e.eor = make(map[api.Family_Afi]bool)
	}
	return true
}

func (t *table) endOfRIBLocked(p *api.Path) bool {
	addr, err := netip.ParseAddr(p.GetNeighborIp())
	if err != nil {
		return false
	}
	e := t.peers[addr]
	if e == nil || e.eor == nil || e.eor[p.GetFamily().GetAfi()] {
		return false
	}
	e.eor[p.GetFamily().GetAfi()] = true
	return true
}

func (t *table) bestPathLocked(p *api.Path) bool {
	prefix, path, learned, err := learnedPath(p)
	if err != nil {
		return false // not unicast: nothing routerd routes
	}
	old, had := t.paths[prefix]
	switch {
	case learned && had && old == path:
		return false
	case learned:
		t.paths[prefix] = path
	case had:
		delete(t.paths, prefix)
	default:
		return false
	}
	t.sorted = nil
	return true
}

// forgetPeer drops what the stream said about a deleted neighbour.
func (t *table) forgetPeer(addr netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.peers, addr)
}

// peer returns what the stream said about addr.
func (t *table) peer(addr netip.Addr) (peerEvents, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.peers[addr]
	if !ok {
		return peerEvents{}, false
	}
	c := *e
	c.eor = make(map[api.Family_Afi]bool, len(e.eor))
	for k, v := range e.eor {
		c.eor[k] = v
	}
	return c, true
}

// snapshot returns the learned paths sorted by prefix; sorting happens
// once per change, copying on every call (the caller owns the slice).
func (t *table) snapshot() []model.Path {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sorted == nil {
		t.sorted = make([]model.Path, 0, len(t.paths))
		for _, p := range t.paths {
			t.sorted = append(t.sorted, p)
		}
		slices.SortFunc(t.sorted, func(a, b model.Path) int { return model.ComparePrefix(a.Prefix, b.Prefix) })
	}
	return slices.Clone(t.sorted)
}

// learnedPath reads one best-path event: its prefix, and the path when the
// event makes a path learned from a peer the best one. learned is false
// when the prefix has no best path any more (a withdrawal) or when the new
// best path is a local one (GoBGP reports those with no neighbour).
func learnedPath(p *api.Path) (prefix netip.Prefix, path model.Path, learned bool, err error) {
	var nlri api.IPAddressPrefix
	if err := p.GetNlri().UnmarshalTo(&nlri); err != nil {
		return prefix, path, false, fmt.Errorf("NLRI: %w", err)
	}
	addr, err := netip.ParseAddr(nlri.GetPrefix())
	if err != nil {
		return prefix, path, false, fmt.Errorf("NLRI prefix: %w", err)
	}
	prefix = netip.PrefixFrom(addr, int(nlri.GetPrefixLen()))
	if !prefix.IsValid() {
		return prefix, path, false, fmt.Errorf("NLRI prefix length %d", nlri.GetPrefixLen())
	}
	prefix = prefix.Masked()
	neighbor, nerr := netip.ParseAddr(p.GetNeighborIp())
	if p.GetIsWithdraw() || nerr != nil {
		return prefix, path, false, nil
	}
	nh, err := nextHopOf(p)
	if err != nil {
		return prefix, path, false, err
	}
	return prefix, model.Path{Prefix: prefix, NextHop: nh, Peer: neighbor}, true, nil
}

// nextHopOf reads the next hop from NEXT_HOP (IPv4) or MP_REACH_NLRI (IPv6;
// its first next hop is the global one, a link-local one may follow).
func nextHopOf(p *api.Path) (netip.Addr, error) {
	for _, a := range p.GetPattrs() {
		switch {
		case a.MessageIs((*api.NextHopAttribute)(nil)):
			var nh api.NextHopAttribute
			if err := a.UnmarshalTo(&nh); err != nil {
				return netip.Addr{}, err
			}
			return netip.ParseAddr(nh.GetNextHop())
		case a.MessageIs((*api.MpReachNLRIAttribute)(nil)):
			var mp api.MpReachNLRIAttribute
			if err := a.UnmarshalTo(&mp); err != nil {
				return netip.Addr{}, err
			}
			if len(mp.GetNextHops()) == 0 {
				return netip.Addr{}, errors.New("MP_REACH_NLRI without next hop")
			}
			return netip.ParseAddr(mp.GetNextHops()[0])
		}
	}
	return netip.Addr{}, errors.New("no next hop attribute")
}

const stateEstablished = "established"

// sessionState names a session state as model.PeerState does.
func sessionState(s api.PeerState_SessionState) string {
	if name, ok := api.PeerState_SessionState_name[int32(s)]; ok {
		return strings.ToLower(name)
	}
	return "unknown"
}

// Paths is part of Router.
func (s *Speaker) Paths() []model.Path { return s.table.snapshot() }

// Changes is part of Router.
func (s *Speaker) Changes() <-chan struct{} { return s.changes }
