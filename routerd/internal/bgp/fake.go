package bgp

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Fake is an in-memory Router for the tests of routerd's other packages.
// It records what it is told, checks and diffs it with the same code as
// the Speaker (so an invalid peer or advertisement fails the same way), and
// reports the learned paths and peer states the test injects. It never
// opens a socket.
type Fake struct {
	changes chan struct{}

	mu      sync.Mutex
	running bool
	global  model.Global
	starts  int
	fail    map[FakeOp]error

	wantPeers   []model.Peer
	wantAdverts []model.Advertisement
	wantNextHop netip.Addr
	peers       map[netip.Addr]model.Peer
	adverts     map[netip.Prefix]netip.Addr

	paths  map[netip.Prefix]model.Path
	states map[netip.Addr]model.PeerState
}

// FakeOp names a Router method, for FailNext.
type FakeOp string

// The operations whose failure a test can inject.
const (
	OpStart             FakeOp = "Start"
	OpSetPeers          FakeOp = "SetPeers"
	OpSetAdvertisements FakeOp = "SetAdvertisements"
	OpPeers             FakeOp = "Peers"
	OpStop              FakeOp = "Stop"
)

// NewFake returns a stopped fake.
func NewFake() *Fake {
	return &Fake{
		changes: make(chan struct{}, 1),
		fail:    make(map[FakeOp]error),
		peers:   make(map[netip.Addr]model.Peer),
		adverts: make(map[netip.Prefix]netip.Addr),
		paths:   make(map[netip.Prefix]model.Path),
		states:  make(map[netip.Addr]model.PeerState),
	}
}

// FailNext makes the next call of op return err and change nothing.
func (f *Fake) FailNext(op FakeOp, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[op] = err
}

func (f *Fake) failLocked(op FakeOp) error {
	err := f.fail[op]
	delete(f.fail, op)
	return err
}

// Start is part of Router. A restart (a different Global) drops the
// injected paths and peer states, as a real restart resets the sessions.
func (f *Fake) Start(_ context.Context, g model.Global) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failLocked(OpStart); err != nil {
		return err
	}
	if f.running && globalEqual(f.global, g) {
		return nil
	}
	if _, err := globalToAPI(g); err != nil {
		return err
	}
	f.running, f.global = true, cloneGlobal(g)
	f.starts++
	f.peers = make(map[netip.Addr]model.Peer)
	f.adverts = make(map[netip.Prefix]netip.Addr)
	f.clearLocked()
	return f.applyLocked()
}

func (f *Fake) applyLocked() error {
	pp, perr := planPeers(f.global, f.peers, f.wantPeers)
	f.peers = pp.apply(f.peers)
	ap, aerr := planAdverts(f.adverts, f.wantAdverts, f.wantNextHop)
	f.adverts = ap.apply(f.adverts)
	f.pruneStatesLocked()
	return errors.Join(perr, aerr)
}

// pruneStatesLocked forgets the injected states of deleted peers.
func (f *Fake) pruneStatesLocked() {
	for a := range f.states {
		if _, ok := f.peers[a]; !ok {
			delete(f.states, a)
		}
	}
}

// SetPeers is part of Router.
func (f *Fake) SetPeers(_ context.Context, peers []model.Peer) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failLocked(OpSetPeers); err != nil {
		return err
	}
	f.wantPeers = slices.Clone(peers)
	if !f.running {
		return nil
	}
	pp, err := planPeers(f.global, f.peers, f.wantPeers)
	f.peers = pp.apply(f.peers)
	f.pruneStatesLocked()
	return err
}

// SetAdvertisements is part of Router.
func (f *Fake) SetAdvertisements(_ context.Context, adverts []model.Advertisement, nextHop netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failLocked(OpSetAdvertisements); err != nil {
		return err
	}
	f.wantAdverts, f.wantNextHop = slices.Clone(adverts), nextHop
	if !f.running {
		return nil
	}
	ap, err := planAdverts(f.adverts, f.wantAdverts, f.wantNextHop)
	f.adverts = ap.apply(f.adverts)
	return err
}

// Paths is part of Router.
func (f *Fake) Paths() []model.Path {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]model.Path, 0, len(f.paths))
	for _, p := range f.paths {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b model.Path) int { return model.ComparePrefix(a.Prefix, b.Prefix) })
	return out
}

// Changes is part of Router.
func (f *Fake) Changes() <-chan struct{} { return f.changes }

// Peers is part of Router: the injected state of every configured peer,
// "idle" for a peer without one.
func (f *Fake) Peers(context.Context) ([]model.PeerState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failLocked(OpPeers); err != nil {
		return nil, err
	}
	if !f.running {
		return nil, nil
	}
	out := make([]model.PeerState, 0, len(f.peers))
	for a, p := range f.peers {
		st, ok := f.states[a]
		if !ok {
			st = model.PeerState{State: "idle"}
		}
		st.Peer = p
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b model.PeerState) int { return a.Address.Compare(b.Address) })
	return out, nil
}

// Stop is part of Router: the fake forgets its learned paths and peer
// states and keeps what it was told, as the Speaker does.
func (f *Fake) Stop() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.failLocked(OpStop); err != nil {
		return err
	}
	if !f.running {
		return nil
	}
	f.running = false
	f.peers = make(map[netip.Addr]model.Peer)
	f.adverts = make(map[netip.Prefix]netip.Addr)
	f.clearLocked()
	return nil
}

func (f *Fake) clearLocked() {
	if len(f.paths) > 0 || len(f.states) > 0 {
		f.paths = make(map[netip.Prefix]model.Path)
		f.states = make(map[netip.Addr]model.PeerState)
		signal(f.changes)
	}
}

// Running returns the Global of the running fake, and whether it runs.
func (f *Fake) Running() (model.Global, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneGlobal(f.global), f.running
}

// Starts counts the Start calls that started or restarted the fake.
func (f *Fake) Starts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts
}

// ConfiguredPeers returns the neighbours the fake has, sorted by address.
func (f *Fake) ConfiguredPeers() []model.Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]model.Peer, 0, len(f.peers))
	for _, p := range f.peers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b model.Peer) int { return a.Address.Compare(b.Address) })
	return out
}

// Announced returns the prefixes the fake announces, each with its next
// hop (the unspecified address where the speaker would use each session's
// local address).
func (f *Fake) Announced() map[netip.Prefix]netip.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[netip.Prefix]netip.Addr, len(f.adverts))
	for k, v := range f.adverts {
		out[k] = v
	}
	return out
}

// LearnPath makes p the best learned path of its prefix.
func (f *Fake) LearnPath(p model.Path) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p.Prefix = p.Prefix.Masked()
	f.paths[p.Prefix] = p
	signal(f.changes)
}

// WithdrawPath removes the learned path of prefix.
func (f *Fake) WithdrawPath(prefix netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.paths[prefix.Masked()]; ok {
		delete(f.paths, prefix.Masked())
		signal(f.changes)
	}
}

// SetPeerState sets what Peers reports for the configured peer at
// st.Address (its Peer fields are those configured). A state for an
// address that is not configured is ignored.
func (f *Fake) SetPeerState(st model.PeerState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.peers[st.Address]; !ok {
		return
	}
	f.states[st.Address] = st
	signal(f.changes)
}
