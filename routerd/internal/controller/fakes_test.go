package controller

import (
	"context"
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

type fakeSpeaker struct {
	starts  []model.Global
	peers   []model.Peer
	adverts []model.Advertisement
	nextHop netip.Addr
	paths   []model.Path
	states  []model.PeerState
	changes chan struct{}
	// calls are the configuration calls in order.
	calls []string
}

func newFakeSpeaker() *fakeSpeaker { return &fakeSpeaker{changes: make(chan struct{}, 1)} }

func (f *fakeSpeaker) Start(_ context.Context, g model.Global) error {
	f.starts = append(f.starts, g)
	f.calls = append(f.calls, "Start")
	return nil
}
func (f *fakeSpeaker) SetPeers(_ context.Context, p []model.Peer) error {
	f.peers = slices.Clone(p)
	f.calls = append(f.calls, "SetPeers")
	return nil
}
func (f *fakeSpeaker) SetAdvertisements(_ context.Context, a []model.Advertisement, nh netip.Addr) error {
	f.adverts, f.nextHop = slices.Clone(a), nh
	f.calls = append(f.calls, "SetAdvertisements")
	return nil
}
func (f *fakeSpeaker) Paths() []model.Path      { return slices.Clone(f.paths) }
func (f *fakeSpeaker) Changes() <-chan struct{} { return f.changes }
func (f *fakeSpeaker) Peers(context.Context) ([]model.PeerState, error) {
	return slices.Clone(f.states), nil
}

type fakeRoutes struct {
	installed []model.Route
	tunnels   []model.Tunnel
	fulls     int
}

func (f *fakeRoutes) Apply(rs []model.Route, ts []model.Tunnel, full bool) (int, error) {
	n := 0
	if !slices.Equal(rs, f.installed) || !slices.Equal(ts, f.tunnels) {
		n = 1
	}
	f.installed, f.tunnels = slices.Clone(rs), slices.Clone(ts)
	if full {
		f.fulls++
	}
	return n, nil
}
func (f *fakeRoutes) Installed() ([]model.Route, error) { return slices.Clone(f.installed), nil }

type fakeMasq struct{ pods, keep []netip.Prefix }

func (f *fakeMasq) Apply(pods, keep []netip.Prefix, _ bool) (int, error) {
	f.pods, f.keep = slices.Clone(pods), slices.Clone(keep)
	return 0, nil
}

type fakePodNet struct {
	bridge     bool
	bridgeMTU  int
	gateways   []netip.Prefix
	subnets    []model.Subnet
	mtu        int
	cniCIDRs   []netip.Prefix
	cniWritten []netip.Prefix // nil: no file
	writes     int
	removes    int
	ensures    int
}

func (f *fakePodNet) BridgeExists() (bool, error) { return f.bridge, nil }
func (f *fakePodNet) EnsureBridge(cidrs []netip.Prefix, mtu int) (bool, error) {
	f.bridge, f.gateways, f.bridgeMTU = true, slices.Clone(cidrs), mtu
	f.ensures++
	return true, nil
}
func (f *fakePodNet) Subnets() ([]model.Subnet, error) { return f.subnets, nil }
func (f *fakePodNet) LinkMTU(netip.Addr) (int, error)  { return f.mtu, nil }
func (f *fakePodNet) CNIPodCIDRs() ([]netip.Prefix, error) {
	return append(f.cniCIDRs, f.cniWritten...), nil
}
func (f *fakePodNet) WriteCNIConfig(c []netip.Prefix, _ int) (bool, error) {
	f.cniWritten = slices.Clone(c)
	f.writes++
	return true, nil
}
func (f *fakePodNet) RemoveCNIConfig() error {
	f.cniWritten = nil
	f.removes++
	return nil
}
