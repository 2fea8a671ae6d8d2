package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/server"
	"go.uber.org/zap"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Speaker is the Router over GoBGP embedded as a library.
type Speaker struct {
	log     *zap.Logger
	changes chan struct{}
	table   *table // fed by GoBGP's event stream; has its own lock

	// mu serialises the configuration calls; the event stream never
	// takes it, so a slow GoBGP call cannot stall Paths or Changes.
	mu sync.Mutex
	// srv is the running GoBGP server, nil when stopped.
	srv    *server.BgpServer
	global model.Global
	// stopWatch ends the event stream of srv.
	stopWatch context.CancelFunc
	// firstPeers is set by Start: the next peers applied are told that
	// this speaker restarted (see peerToAPI).
	firstPeers bool
	// externalSet is what the export policy's neighbour set holds.
	externalSet []string

	// What the caller wants, kept across Stop and Start.
	wantPeers   []model.Peer
	wantAdverts []model.Advertisement
	wantNextHop netip.Addr

	// What srv has: the diff base of SetPeers and SetAdvertisements.
	peers   map[netip.Addr]model.Peer
	adverts map[netip.Prefix]netip.Addr
}

// New returns a stopped speaker that logs to log.
func New(log *zap.Logger) *Speaker {
	changes := make(chan struct{}, 1)
	return &Speaker{
		log:     log,
		changes: changes,
		table:   newTable(changes),
	}
}

// Start is part of Router. When a restart fails (the new Global cannot be
// started, e.g. its listen address is taken), the speaker is left stopped.
//
// Each start runs a new GoBGP server: a stopped GoBGP server cannot be
// reused cleanly (StopBgp keeps its closed listeners, and a later
// StartBgp then logs failures to set MD5 keys on them), and GoBGP v3's
// Serve loop never returns, so every Start after a Stop or a restart
// leaves one idle goroutine behind. Restarts are rare (a changed AS or
// router ID); the goroutine is small.
func (s *Speaker) Start(ctx context.Context, g model.Global) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil && globalEqual(s.global, g) {
		return nil
	}
	req, err := globalToAPI(g)
	if err != nil {
		return err
	}
	if s.srv != nil {
		s.log.Info("restarting the BGP speaker with new settings")
		s.stopLocked()
	}
	srv := server.NewBgpServer(server.LoggerOption(newZapLogger(s.log)))
	go srv.Serve()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: req}); err != nil {
		// StartBgp keeps the listeners it opened before the one that
		// failed; StopBgp closes them.
		_ = srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return fmt.Errorf("starting BGP: %w", err)
	}
	if err := installExportPolicy(ctx, srv); err != nil {
		_ = srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return err
	}
	gen := s.table.reset()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	err = srv.WatchEvent(watchCtx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST},
			{Type: api.WatchEventRequest_Table_Filter_EOR},
		}},
	}, func(ev *api.WatchEventResponse) { s.table.handle(gen, ev) })
	if err != nil {
		stopWatch()
		_ = srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		return fmt.Errorf("watching BGP events: %w", err)
	}
	s.srv, s.global, s.stopWatch = srv, cloneGlobal(g), stopWatch
	s.peers = make(map[netip.Addr]model.Peer)
	s.adverts = make(map[netip.Prefix]netip.Addr)
	s.firstPeers = true
	s.externalSet = nil
	s.log.Info("BGP speaker started", zap.Stringer("routerID", g.RouterID), zap.Uint32("asn", g.ASN),
		zap.Int32("port", g.ListenPort), zap.Duration("gracefulRestart", g.GracefulRestart))

	// The local paths go in before any neighbour is added, so that every
	// session starts with the complete table and, after a restart, the
	// End-of-RIB a peer gets follows all of our routes (a route missing
	// then would be withdrawn as stale).
	return errors.Join(s.applyAdvertsLocked(ctx), s.applyPeersLocked(ctx))
}

// Stop is part of Router.
func (s *Speaker) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	s.stopLocked()
	s.log.Info("BGP speaker stopped")
	return nil
}

func (s *Speaker) stopLocked() {
	// StopBgp closes every session with a NOTIFICATION (Cease, peer
	// de-configured) and waits for the sessions' goroutines.
	_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
	s.stopWatch()
	s.table.reset()
	s.srv, s.stopWatch = nil, nil
	s.peers, s.adverts = nil, nil
}

// globalToAPI converts g into GoBGP's global configuration.
func globalToAPI(g model.Global) (*api.Global, error) {
	switch {
	case !g.RouterID.Is4():
		// The BGP identifier is four bytes (RFC 4271).
		return nil, fmt.Errorf("BGP router ID %v is not an IPv4 address", g.RouterID)
	case g.ASN == 0:
		return nil, errors.New("BGP AS number 0")
	case g.ListenPort < -1 || g.ListenPort > 65535:
		return nil, fmt.Errorf("BGP listen port %d", g.ListenPort)
	case g.ClusterID.IsValid() && !g.ClusterID.Is4():
		return nil, fmt.Errorf("BGP cluster ID %v is not an IPv4 address", g.ClusterID)
	case g.GracefulRestart < 0:
		return nil, fmt.Errorf("graceful restart time %v", g.GracefulRestart)
	}
	req := &api.Global{
		Asn:        g.ASN,
		RouterId:   g.RouterID.String(),
		ListenPort: g.ListenPort, // 0 is GoBGP's 179, -1 no listener
		// Only the unicast families: GoBGP's default is a RIB for each
		// of the families it knows.
		Families: []uint32{familyIndexIPv4, familyIndexIPv6},
	}
	for _, a := range g.ListenAddresses {
		if !a.IsValid() {
			return nil, errors.New("invalid BGP listen address")
		}
		req.ListenAddresses = append(req.ListenAddresses, a.String())
	}
	return req, nil
}

// GoBGP's global families are indexes into its own table of families
// (oc.AfiSafiTypeToIntMap), not AFI/SAFI numbers.
const (
	familyIndexIPv4 = 0 // ipv4-unicast
	familyIndexIPv6 = 1 // ipv6-unicast
)

func globalEqual(a, b model.Global) bool {
	return a.RouterID == b.RouterID && a.ASN == b.ASN && a.ListenPort == b.ListenPort &&
		slices.Equal(a.ListenAddresses, b.ListenAddresses) && a.ClusterID == b.ClusterID &&
		a.GracefulRestart == b.GracefulRestart
}

func cloneGlobal(g model.Global) model.Global {
	g.ListenAddresses = slices.Clone(g.ListenAddresses)
	return g
}
