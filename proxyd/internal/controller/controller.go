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
	"github.com/nodenet/nodenet/proxyd/internal/conntrack"
	"github.com/nodenet/nodenet/proxyd/internal/desired"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/reconcile"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// serviceProxyNameLabel marks Services that another proxy implements;
// like kube-proxy, proxyd leaves them alone.
const serviceProxyNameLabel = "service.kubernetes.io/service-proxy-name"

// Masquerade applies proxyd's nftables table for a desired state; full
// re-reads the kernel first.
type Masquerade interface {
	Apply(state model.State, podCIDRs []netip.Prefix, full bool) (writes int, err error)
}

// HealthChecks serves the healthCheckNodePorts.
type HealthChecks interface {
	Sync([]model.HealthCheck) error
}

// Kernel is everything proxyd writes to.
type Kernel struct {
	Reconciler   *reconcile.Reconciler
	Masquerade   Masquerade
	Conntrack    conntrack.Interface
	HealthChecks HealthChecks
}

// Controller is proxyd's daemon.Controller.
type Controller struct {
	log          *zap.Logger
	cfg          Config
	deps         daemon.Deps
	kernel       Kernel
	factories    []kube.Factory
	svcs         corelisters.ServiceLister
	slicesOf     func(ns, name string) []*discoveryv1.EndpointSlice
	sliceIndexer cache.Indexer
	nodes        corelisters.NodeLister
	cache        *resultCache
	problems     *problemReporter

	lastNode nodeFacts
	nodeGen  uint64

	mu     sync.Mutex
	counts map[string]uint64
	timer  *time.Timer
}

var _ daemon.Controller = (*Controller)(nil)

// New wires a controller; nothing runs before Start. events records the
// problems on the objects (nil: logged and counted only).
func New(deps daemon.Deps, cfg Config, client kubernetes.Interface, k Kernel, events EventRecorder) *Controller {
	c := &Controller{log: deps.Log, cfg: cfg, deps: deps, kernel: k, cache: newCache(), counts: map[string]uint64{}}
	c.problems = newProblemReporter(deps.Log, events, deps.Metrics)
	// Services another proxy implements are not even cached.
	notOthers := informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		req, _ := labels.NewRequirement(serviceProxyNameLabel, selection.DoesNotExist, nil)
		o.LabelSelector = labels.NewSelector().Add(*req).String()
	})
	onlyThisNode := informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", deps.Config.NodeName).String()
	})
	svcFac := informers.NewSharedInformerFactoryWithOptions(client, 0, notOthers)
	sliceFac := informers.NewSharedInformerFactory(client, 0)
	nodeFac := informers.NewSharedInformerFactoryWithOptions(client, 0, onlyThisNode)
	svcInf := svcFac.Core().V1().Services()
	sliceInf := sliceFac.Discovery().V1().EndpointSlices()
	nodeInf := nodeFac.Core().V1().Nodes()
	handler := kube.OnChange(deps.Trigger)
	// AddEventHandler only fails on a stopped informer; these are new.
	_, _ = svcInf.Informer().AddEventHandler(handler)
	_, _ = sliceInf.Informer().AddEventHandler(handler)
	_, _ = nodeInf.Informer().AddEventHandler(handler)
	// Adding an index fails only on a started informer.
	_ = sliceInf.Informer().AddIndexers(cache.Indexers{byServiceIndex: sliceServiceKey})
	c.svcs, c.nodes = svcInf.Lister(), nodeInf.Lister()
	c.sliceIndexer = sliceInf.Informer().GetIndexer()
	c.slicesOf = slicesFrom(c.sliceIndexer)
	c.factories = []kube.Factory{svcFac, sliceFac, nodeFac}
	return c
}

// Start is part of daemon.Controller: it returns once every informer has
// listed, so the first sync sees every Service (a sync with half of them
// would delete the other half from the kernel).
func (c *Controller) Start(ctx context.Context) error {
	return kube.StartAndSync(ctx, c.factories...)
}

// Counts is part of daemon.Controller.
func (c *Controller) Counts() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.counts))
	for k, v := range c.counts {
		out[k] = v
	}
	return out
}

// Sync is part of daemon.Controller.
func (c *Controller) Sync(ctx context.Context, full bool) error {
	node, err := c.node()
	if err != nil {
		return err
	}
	svcs, err := c.svcs.List(labels.Everything())
	if err != nil {
		return err
	}
	state, problems := c.desired(svcs, node)
	c.problems.report(problems, c.lookup)

	var errs []error
	res, err := c.kernel.Reconciler.Sync(state, node.IPs, full)
	errs = append(errs, err)
	if c.kernel.Masquerade != nil {
		_, err := c.kernel.Masquerade.Apply(state, node.PodCIDRs, full)
		errs = append(errs, err)
	}
	if len(res.RemovedUDP) > 0 && c.kernel.Conntrack != nil {
		flows := make([]conntrack.Flow, len(res.RemovedUDP))
		for i, r := range res.RemovedUDP {
			flows[i] = conntrack.Flow{VIP: r.VS.Addr, Port: r.VS.Port, Backend: r.Dest.Addr}
		}
		if _, err := c.kernel.Conntrack.DeleteUDP(flows); err != nil {
			errs = append(errs, fmt.Errorf("delete conntrack entries of removed UDP endpoints: %w", err))
		}
	}
	if c.kernel.HealthChecks != nil {
		errs = append(errs, c.kernel.HealthChecks.Sync(state.HealthChecks))
	}
	c.deps.Publisher.SetVIPs(vipFacts(res.Programmed))
	c.recheck(res.RecheckAfter)
	c.setCounts(len(svcs), state, res, len(problems))
	return errors.Join(errs...)
}

// node returns this node's facts; a change of them invalidates the cache.
func (c *Controller) node() (nodeFacts, error) {
	n, err := c.nodes.Get(c.deps.Config.NodeName)
	if err != nil && !apierrors.IsNotFound(err) {
		return nodeFacts{}, err
	}
	var routerd *coord.Facts
	if w := c.deps.Peers["routerd"]; w != nil {
		f := w.Facts()
		routerd = &f
	}
	nf := nodeInfo(c.deps.Config.NodeName, n, routerd)
	if !nf.equal(c.lastNode) {
		c.lastNode = nf
		c.nodeGen++
	}
	return nf, nil
}

// desired computes the desired state, recomputing only the Services whose
// object, slices or node facts changed since the last sync.
func (c *Controller) desired(svcs []*corev1.Service, node nodeFacts) (model.State, []desired.Problem) {
	results := c.cache.results(svcs, c.slicesOf, c.nodeGen, func(svc *corev1.Service, sl []*discoveryv1.EndpointSlice) desired.ServiceResult {
		return desired.ComputeService(svc, sl, node.Node, desired.Config{DefaultScheduler: c.cfg.Scheduler})
	})
	return desired.Merge(results)
}

// recheck asks for another sync after d (draining real servers); one
// timer at a time.
func (c *Controller) recheck(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if d > 0 {
		c.timer = time.AfterFunc(d, c.deps.Trigger)
	}
}

func (c *Controller) setCounts(svcs int, st model.State, res reconcile.Result, problems int) {
	dests := 0
	vips := map[netip.Addr]bool{}
	for _, vs := range st.Services {
		dests += len(vs.Dests)
		if vs.Kind != model.NodePort {
			vips[vs.Addr] = true
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts = map[string]uint64{
		"services":        uint64(svcs),
		"virtualServices": uint64(len(st.Services)),
		"realServers":     uint64(dests),
		"vips":            uint64(len(vips)),
		"healthChecks":    uint64(len(st.HealthChecks)),
		"draining":        uint64(res.Draining),
		"problems":        uint64(problems),
	}
}
