package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/kube"
	"github.com/nodenet/nodenet/internal/problems"
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
	"k8s.io/apimachinery/pkg/types"
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
	// svcStore and nodeStore are the informers' caches (tests fill them).
	svcStore, nodeStore cache.Store
	nodes               corelisters.NodeLister
	cache               *resultCache
	store               *store
	dirty               *dirtySet
	problems            *problems.Reporter

	lastNode         nodeFacts
	nodeGen          uint64
	publishAll       bool
	masqueradeFailed bool
	// masqueraded are the virtual services the masquerade table was last
	// given successfully, by key (nil before the first apply).
	masqueraded map[model.VSKey]*model.VirtualService
	draining    int

	// synced describes the last sync, for traces (guarded by syncMu).
	synced syncRecord
	now    func() time.Time

	// syncMu is held by Sync; Counts and Trace take it to read the store.
	syncMu sync.Mutex
	mu     sync.Mutex // guards timer
	timer  *time.Timer
}

var _ daemon.Controller = (*Controller)(nil)

// New wires a controller; nothing runs before Start. events records the
// problems on the objects (nil: logged and counted only).
func New(deps daemon.Deps, cfg Config, client kubernetes.Interface, k Kernel, events EventRecorder) *Controller {
	c := &Controller{log: deps.Log, cfg: cfg, deps: deps, kernel: k, cache: newCache(), store: newStore(), dirty: newDirtySet(), now: time.Now}
	c.problems = problems.New("proxyd", deps.Log, events, deps.Metrics)
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
	markService := func(obj any) {
		if k, ok := objectKey(obj); ok {
			c.dirty.add(k)
		}
	}
	markSlice := func(obj any) {
		if k, ok := sliceService(obj); ok {
			c.dirty.add(k)
		}
	}
	// AddEventHandler only fails on a stopped informer; these are new.
	_, _ = svcInf.Informer().AddEventHandler(handler(markService, deps.Versions.Recorder("services"), deps.Trigger))
	_, _ = sliceInf.Informer().AddEventHandler(handler(markSlice, deps.Versions.Recorder("endpointslices"), deps.Trigger))
	_, _ = nodeInf.Informer().AddEventHandler(kube.OnChangeTracked(deps.Trigger, deps.Versions, "nodes"))
	// Adding an index fails only on a started informer.
	_ = sliceInf.Informer().AddIndexers(cache.Indexers{byServiceIndex: sliceServiceKey})
	c.svcs, c.nodes = svcInf.Lister(), nodeInf.Lister()
	c.svcStore, c.nodeStore = svcInf.Informer().GetStore(), nodeInf.Informer().GetStore()
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

// Counts is part of daemon.Controller. They are computed on demand (status
// asks rarely) rather than by every sync, which must stay cheap.
func (c *Controller) Counts() map[string]uint64 {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	dests := 0
	vips := map[netip.Addr]bool{}
	for _, cl := range c.store.claims {
		vs := cl[0]
		dests += len(vs.Dests)
		if vs.Kind != model.NodePort {
			vips[vs.Addr] = true
		}
	}
	return map[string]uint64{
		"services":        uint64(len(c.store.results)),
		"virtualServices": uint64(len(c.store.claims)),
		"realServers":     uint64(dests),
		"vips":            uint64(len(vips)),
		"healthChecks":    uint64(len(c.store.checks)),
		"draining":        uint64(c.draining),
		"problems":        uint64(c.problems.Count()),
	}
}

// Sync is part of daemon.Controller. A full sync (or one after a change of
// the node facts) recomputes every Service and re-reads the kernel; any
// other recomputes the Services events touched and applies only what
// changed.
func (c *Controller) Sync(ctx context.Context, full bool) error {
	node, nodeChanged, err := c.node()
	if err != nil {
		return err
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	dirty, all := c.dirty.take()
	var res reconcile.Result
	var syncErr error
	touched := touchedAll
	if full || all || nodeChanged {
		res, syncErr = c.syncAll(node, full)
	} else {
		res, touched, syncErr = c.syncDirty(dirty, node)
		if errors.Is(syncErr, reconcile.ErrNeedSync) {
			res, syncErr = c.syncAll(node, true)
			touched = touchedAll
		}
	}
	if syncErr != nil {
		// Recompute and re-apply these next time: the runner retries with
		// a full sync, which also re-reads the kernel.
		c.dirty.putBack(dirty, all)
	}
	errs := []error{syncErr}

	// What follows depends on little of the state; a partial sync only
	// does what its changes touched, so it costs in proportion to them.
	if touched.problems {
		c.reportProblems(c.store.problems())
	}
	if c.kernel.Masquerade != nil && (touched.masquerade || c.masqueradeFailed) {
		st := c.store.state()
		_, err := c.kernel.Masquerade.Apply(st, node.PodCIDRs, full || c.masqueradeFailed)
		c.masqueradeFailed = err != nil
		if err == nil {
			c.masqueraded = make(map[model.VSKey]*model.VirtualService, len(st.Services))
			for _, vs := range st.Services {
				c.masqueraded[vs.VSKey] = vs
			}
		}
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
	if c.kernel.HealthChecks != nil && touched.healthChecks {
		errs = append(errs, c.kernel.HealthChecks.Sync(c.store.healthChecks()))
	}
	c.publish(res)
	c.recheck(res.RecheckAfter)
	c.draining = res.Draining
	err = errors.Join(errs...)
	c.synced.record(node, c.now(), err)
	return err
}

// touched says which consumers of the merged state a sync changed.
type touched struct {
	problems, masquerade, healthChecks bool
}

var touchedAll = touched{problems: true, masquerade: true, healthChecks: true}

// syncAll recomputes every Service (the cache keeps the unchanged ones'
// results) and reconciles the whole state.
func (c *Controller) syncAll(node nodeFacts, full bool) (reconcile.Result, error) {
	svcs, err := c.svcs.List(labels.Everything())
	if err != nil {
		return reconcile.Result{}, err
	}
	c.store = newStore()
	keep := make(map[types.NamespacedName]bool, len(svcs))
	changed := map[model.VSKey]bool{}
	for _, svc := range svcs {
		if otherProxy(svc) {
			continue
		}
		key := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
		keep[key] = true
		r := c.compute(svc, node)
		c.store.set(key, &r, changed)
	}
	c.cache.retain(keep)
	c.publishAll = true
	st := c.store.state()
	c.masqueradeAddsFirst(st, node.PodCIDRs)
	return c.kernel.Reconciler.Sync(st, node.IPs, full)
}

// syncDirty recomputes the Services in dirty and applies the virtual
// services whose wanted value changed.
func (c *Controller) syncDirty(dirty map[types.NamespacedName]bool, node nodeFacts) (reconcile.Result, touched, error) {
	var t touched
	changed := map[model.VSKey]bool{}
	before := map[model.VSKey]*model.VirtualService{}
	for key := range dirty {
		old, had := c.store.results[key]
		for _, vs := range old.Services {
			if _, ok := before[vs.VSKey]; !ok {
				before[vs.VSKey] = c.store.winner(vs.VSKey)
			}
		}
		svc, err := c.svcs.Services(key.Namespace).Get(key.Name)
		if apierrors.IsNotFound(err) || (err == nil && otherProxy(svc)) {
			c.cache.forget(key)
			c.store.set(key, nil, changed)
			t.problems = t.problems || len(old.Problems) > 0
			t.healthChecks = t.healthChecks || old.HealthCheck != nil
			continue
		}
		if err != nil {
			return reconcile.Result{}, t, err
		}
		r := c.compute(svc, node)
		c.store.set(key, &r, changed)
		t.problems = t.problems || !had || !slices.Equal(old.Problems, r.Problems)
		t.healthChecks = t.healthChecks || !ptrEqual(old.HealthCheck, r.HealthCheck)
	}
	changes := make(map[model.VSKey]*model.VirtualService, len(changed))
	for k := range changed {
		now := c.store.winner(k)
		changes[k] = now
		prev, known := before[k]
		if !known || !masqueradeEqual(prev, now) {
			t.masquerade = true
		}
		if len(c.store.claims[k]) > 1 || (known && prev != nil && prev != now) {
			t.problems = true // a claim conflict may have started or ended
		}
	}
	if t.masquerade {
		c.masqueradeAddsFirst(c.store.state(), node.PodCIDRs)
	}
	res, err := c.kernel.Reconciler.Update(changes)
	return res, t, err
}

// masqueradeAddsFirst gives the masquerade table the VIPs that IPVS is
// about to serve before it serves them: a connection to a new VIP that a
// local pod sends to itself (hairpin) must find its masquerade rule from
// the first packet. The table gets what it had plus st; what goes away
// goes after IPVS stopped serving it (the apply after the reconciler). A
// failure is retried by that apply.
func (c *Controller) masqueradeAddsFirst(st model.State, podCIDRs []netip.Prefix) {
	if c.kernel.Masquerade == nil || c.masqueraded == nil {
		// Before the first apply the table is the one of the previous
		// run, adopted by the apply after the reconciler.
		return
	}
	union := model.State{Services: make([]*model.VirtualService, 0, len(st.Services)), HealthChecks: st.HealthChecks}
	seen := make(map[model.VSKey]bool, len(st.Services))
	added := false
	for _, vs := range st.Services {
		union.Services = append(union.Services, vs)
		seen[vs.VSKey] = true
		if _, ok := c.masqueraded[vs.VSKey]; !ok {
			added = true
		}
	}
	if !added {
		return
	}
	for k, vs := range c.masqueraded {
		if !seen[k] {
			union.Services = append(union.Services, vs)
		}
	}
	slices.SortFunc(union.Services, func(a, b *model.VirtualService) int { return a.VSKey.Compare(b.VSKey) })
	if _, err := c.kernel.Masquerade.Apply(union, podCIDRs, false); err != nil {
		c.log.Warn("masquerade table before the new VIPs", zap.Error(err))
		c.masqueradeFailed = true
	}
}

func ptrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// masqueradeEqual: the nftables table does not care about the difference
// between a and b (it holds keys, traffic policy and source ranges, not
// endpoints).
func masqueradeEqual(a, b *model.VirtualService) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.VSKey == b.VSKey && a.ExternalLocal == b.ExternalLocal && a.SourceRestricted == b.SourceRestricted &&
		slices.Equal(a.SourceRanges, b.SourceRanges)
}

// otherProxy: the Service is implemented by another proxy. The informer's
// label selector already leaves these out; a label added later reaches us
// as an update, so check again.
func otherProxy(svc *corev1.Service) bool {
	_, ok := svc.Labels[serviceProxyNameLabel]
	return ok
}

func (c *Controller) compute(svc *corev1.Service, node nodeFacts) desired.ServiceResult {
	return c.cache.result(svc, c.slicesOf(svc.Namespace, svc.Name), c.nodeGen, func(svc *corev1.Service, sl []*discoveryv1.EndpointSlice) desired.ServiceResult {
		return desired.ComputeService(svc, sl, node.Node, desired.Config{DefaultScheduler: c.cfg.Scheduler})
	})
}

// publish tells the other daemons which VIPs are programmed: all of them
// after a full sync, only the touched ones otherwise.
func (c *Controller) publish(res reconcile.Result) {
	if c.publishAll {
		c.deps.Publisher.SetVIPs(vipFacts(c.kernel.Reconciler.Programmed()))
		c.publishAll = false
		return
	}
	var set []*model.VirtualService
	var gone []coord.VIPKey
	for _, k := range res.Touched {
		if c.kernel.Reconciler.IsProgrammed(k) {
			set = append(set, c.store.winner(k))
		} else {
			gone = append(gone, coord.VIPKey{IP: k.Addr.String(), Port: uint32(k.Port), Protocol: protoFact(k.Proto)})
		}
	}
	c.deps.Publisher.UpdateVIPs(vipFacts(set), gone)
}

// node returns this node's facts; a change of them invalidates the cache.
func (c *Controller) node() (nodeFacts, bool, error) {
	n, err := c.nodes.Get(c.deps.Config.NodeName)
	if err != nil && !apierrors.IsNotFound(err) {
		return nodeFacts{}, false, err
	}
	var routerd *coord.Facts
	if w := c.deps.Peers["routerd"]; w != nil {
		f := w.Facts()
		routerd = &f
	}
	nf := nodeInfo(c.deps.Config.NodeName, n, routerd)
	if nf.equal(c.lastNode) && c.nodeGen > 0 {
		return nf, false, nil
	}
	c.lastNode = nf
	c.nodeGen++
	return nf, true, nil
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
