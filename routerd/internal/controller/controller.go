// Package controller is routerd's sync loop: informers on Nodes (and the
// Secrets of BGP passwords, and Services and EndpointSlices when service
// IPs are advertised without proxyd); each sync takes the node's pod CIDR,
// ensures the bridge and the CNI config, configures the BGP speaker's
// peers and advertisements, turns the paths it learned into kernel routes
// and tunnels, applies the pod egress masquerade, and publishes the pod
// network facts.
package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/kube"
	"github.com/nodenet/nodenet/internal/problems"
	"github.com/nodenet/nodenet/routerd/internal/model"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// Kernel is what the loop drives.
type Kernel struct {
	Speaker    Speaker
	Routes     RouteTable
	Masquerade Masquerade
	PodNetwork PodNetwork
}

// Controller is routerd's daemon.Controller.
type Controller struct {
	log       *zap.Logger
	deps      daemon.Deps
	cfg       *Config
	k         Kernel
	factories []kube.Factory
	nodes     corelisters.NodeLister
	secrets   corelisters.SecretLister             // nil without a namespace
	services  corelisters.ServiceLister            // nil unless service IPs are advertised
	slices    discoverylisters.EndpointSliceLister // idem
	problems  *problems.Reporter
	now       func() time.Time
	// peerFacts read the facts of the peer daemons watched (by name).
	peerFacts map[string]func() coord.Facts

	syncMu sync.Mutex // held by Sync; Counts reads under it
	state  state
}

// state is what the loop keeps between syncs.
type state struct {
	global  model.Global
	started bool
	// startedAt is when the speaker (re)started: the initial sync ends
	// InitialSyncTimeout after it at the latest.
	startedAt time.Time
	// adopted are the routes found in the kernel at start, kept until the
	// peers have sent their routes (a restart changes no route).
	adopted     []model.Route
	initialDone bool
	// booted: the node's pod network was not there at start.
	booted     bool
	cniWritten bool
	waitingFW  bool
	// podNetKey is the pod CIDRs and MTU the bridge and the CNI config
	// were last made for ("": to be done).
	podNetKey string
	// linkMTU is the MTU of the link of linkMTUOf (the node IP).
	linkMTU   int
	linkMTUOf netip.Addr
	// subnets are the node's subnets, read for the node IP subnetsOf.
	subnets   []model.Subnet
	subnetsOf netip.Addr
	counts    counts
	// view is the last sync, for routerd routes and routerd peers.
	view view
}

type counts struct {
	peers, established, routes, tunnels, advertised, skipped, routeWrites, masqueradeWrites uint64
}

var _ daemon.Controller = (*Controller)(nil)

// New wires a controller; nothing runs before Start. events may be nil.
func New(deps daemon.Deps, cfg *Config, client kubernetes.Interface, k Kernel, events problems.EventRecorder) *Controller {
	c := &Controller{log: deps.Log, deps: deps, cfg: cfg, k: k, now: time.Now, peerFacts: map[string]func() coord.Facts{}}
	for name, w := range deps.Peers {
		c.peerFacts[name] = w.Facts
	}
	c.problems = problems.New("routerd", deps.Log, events, deps.Metrics)
	fac := informers.NewSharedInformerFactory(client, 0)
	nodeInf := fac.Core().V1().Nodes()
	infs := []cache.SharedIndexInformer{nodeInf.Informer()}
	c.nodes = nodeInf.Lister()
	c.factories = []kube.Factory{fac}
	if cfg.advertisesVIPs() && c.peerFacts["proxyd"] == nil {
		// Without proxyd the service IPs come from the API objects.
		svcInf, sliceInf := fac.Core().V1().Services(), fac.Discovery().V1().EndpointSlices()
		infs = append(infs, svcInf.Informer(), sliceInf.Informer())
		c.services, c.slices = svcInf.Lister(), sliceInf.Lister()
	}
	if cfg.Namespace != "" {
		secFac := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(cfg.Namespace))
		secInf := secFac.Core().V1().Secrets()
		infs = append(infs, secInf.Informer())
		c.secrets = secInf.Lister()
		c.factories = append(c.factories, secFac)
	}
	for _, inf := range infs {
		_, _ = inf.AddEventHandler(kube.OnChangeTracked(deps.Trigger, deps.Versions, "")) // kind: the object's own
	}
	return c
}

// Start is part of daemon.Controller: it lists every informer, notes
// whether the node just booted, adopts the routes in the kernel, and
// forwards the speaker's changes to the loop.
func (c *Controller) Start(ctx context.Context) error {
	if err := kube.StartAndSync(ctx, c.factories...); err != nil {
		return err
	}
	exists, err := c.k.PodNetwork.BridgeExists()
	if err != nil {
		return fmt.Errorf("look for bridge %s: %w", c.cfg.Bridge, err)
	}
	adopted, err := c.k.Routes.Installed()
	if err != nil {
		return fmt.Errorf("read routerd's routes: %w", err)
	}
	c.syncMu.Lock()
	c.state.booted, c.state.adopted = !exists, adopted
	c.syncMu.Unlock()
	go func() {
		changes := c.k.Speaker.Changes()
		for {
			select {
			case <-ctx.Done():
				return
			case <-changes:
				c.deps.Trigger()
			}
		}
	}()
	return nil
}

// Sync is part of daemon.Controller.
func (c *Controller) Sync(ctx context.Context, full bool) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	err := c.sync(ctx, full)
	c.state.view.record(c.now(), err, c.state.initialDone)
	return err
}

func (c *Controller) sync(ctx context.Context, full bool) error {
	in, err := c.input()
	if err != nil {
		return err
	}
	var ps []problems.Problem
	defer func() { c.problems.Report(ps, c.lookup) }()
	pn, err := c.podNetwork(in, full, &ps)
	if err != nil {
		// Nothing is published: the others keep the last pod network
		// they saw, or fall back to the Node.
		return err
	}
	var errs []error
	if err := c.syncPodNetwork(pn, in, full); err != nil {
		errs = append(errs, err)
	}
	ready, err := c.syncBGP(ctx, in, pn, full, &ps)
	if err != nil {
		errs = append(errs, err)
	}
	if err := c.syncRoutes(in, pn, full); err != nil {
		errs = append(errs, err)
	}
	if err := c.syncMasquerade(in, pn, full); err != nil {
		errs = append(errs, err)
	}
	c.publish(pn, ready)
	return errors.Join(errs...)
}

// Counts is part of daemon.Controller.
func (c *Controller) Counts() map[string]uint64 {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	n := c.state.counts
	out := map[string]uint64{
		"peers": n.peers, "established": n.established, "routes": n.routes, "tunnels": n.tunnels,
		"advertised": n.advertised, "skippedPaths": n.skipped, "routeWrites": n.routeWrites,
		"masqueradeWrites": n.masqueradeWrites, "problems": uint64(c.problems.Count()),
	}
	if c.state.waitingFW {
		out["waitingForFirewalld"] = 1
	}
	return out
}

// lookup finds the object a problem is about, for its event.
func (c *Controller) lookup(p problems.Problem) runtime.Object {
	switch p.Kind {
	case "Node":
		if n, err := c.nodes.Get(p.Name); err == nil {
			return n
		}
	case "Service":
		if c.services != nil {
			if s, err := c.services.Services(p.Namespace).Get(p.Name); err == nil {
				return s
			}
		}
	}
	return nil
}
