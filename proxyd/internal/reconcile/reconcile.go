// Package reconcile makes the kernel match proxyd's desired state: IPVS
// virtual services and real servers, and the local routes that deliver the
// VIPs. It reads the kernel, diffs, and applies only the difference; a sync
// with nothing changed writes nothing.
//
// Ownership: proxyd owns an IPVS virtual service when its address is one of
// proxyd's VIP routes (route protocol of package vip), or when it is a node
// address with a port in the NodePort range. Nothing else is ever touched, so
// proxyd shares IPVS with other users, and a restarted proxyd adopts its own
// services instead of flushing them.
//
// Order of writes: a VIP route is added before its virtual service (so a
// crash in between leaves a route, which the next sync owns and removes if
// unwanted), and removed after it.
//
// Real servers that are no longer wanted are drained, not cut (TCP, SCTP):
// their weight goes to 0 so they get no new connections, and they are
// deleted once their connections are gone or DrainTimeout has passed. UDP
// has no connections to drain: those are deleted at once and reported so
// the caller can delete their conntrack entries.
package reconcile

import (
	"net/netip"
	"time"

	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
	"k8s.io/utils/clock"
)

// Config tunes a Reconciler.
type Config struct {
	// NodePortMin and NodePortMax bound the NodePort range (default
	// 30000-32767): IPVS services on node addresses in it are proxyd's.
	NodePortMin, NodePortMax uint16
	// DrainTimeout bounds how long a removed real server keeps its
	// connections (default 15 minutes, kube-proxy's TCP established idle
	// timeout is longer; connections still open are then cut).
	DrainTimeout time.Duration
	Clock        clock.PassiveClock
}

// Reconciler applies desired states. It is not safe for concurrent use:
// proxyd's sync loop is its only caller.
type Reconciler struct {
	cfg    Config
	ipvs   ipvs.Interface
	routes vip.Interface

	// kernel is what proxyd believes the kernel holds of what it owns,
	// refreshed by every full sync and kept up to date by every write.
	kernel map[model.VSKey]*kernelVS
	vips   map[netip.Addr]bool
	// want is the desired state; vipRefs counts the wanted virtual
	// services of each VIP that needs a route.
	want    map[model.VSKey]*model.VirtualService
	vipRefs map[netip.Addr]int
	// applied is the desired value last applied per virtual service (what
	// is programmed); a partial sync skips a virtual service whose desired
	// value is the very same object.
	applied map[model.VSKey]*model.VirtualService
	// draining: real servers being drained, since when.
	draining map[destRef]time.Time
	synced   bool
}

type kernelVS struct {
	svc   ipvs.Service
	dests map[model.DestKey]ipvs.Dest
}

type destRef struct {
	vs   model.VSKey
	dest model.DestKey
}

// New returns a reconciler over the IPVS and route ports.
func New(cfg Config, ipvsIf ipvs.Interface, routes vip.Interface) *Reconciler {
	if cfg.NodePortMin == 0 && cfg.NodePortMax == 0 {
		cfg.NodePortMin, cfg.NodePortMax = 30000, 32767
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 15 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Reconciler{cfg: cfg, ipvs: ipvsIf, routes: routes, draining: map[destRef]time.Time{}}
}

// Result reports what a sync did.
type Result struct {
	// Writes counts kernel writes (IPVS and route changes).
	Writes int
	// RemovedUDP are UDP real servers deleted: their conntrack entries
	// must go too, or clients keep sending to a dead backend.
	RemovedUDP []RemovedDest
	// Draining is the number of real servers still draining; the caller
	// should sync again within RecheckAfter to finish them.
	Draining     int
	RecheckAfter time.Duration
	// Touched are the virtual services the sync looked at (all of them
	// for Sync); IsProgrammed tells which are now in the kernel.
	Touched []model.VSKey
}

// RemovedDest is a real server removed from a virtual service.
type RemovedDest struct {
	VS   model.VSKey
	Dest model.DestKey
}
