// Package controller is firewalld's sync loop: informers on NetworkPolicies,
// Pods, Namespaces and its Node; each sync compiles the policies for the
// node's pods (package policy) and applies the datapath to the table in one
// transaction, then publishes "policies in force".
package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/firewalld/internal/policy"
	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/kube"
	"github.com/nodenet/nodenet/internal/problems"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	networkinglisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
)

// Table is firewalld's nftables table, as the loop uses it.
type Table interface {
	// Apply makes the table hold d in one transaction and returns the
	// number of messages written (0 when nothing differed).
	Apply(d *model.Datapath) (writes int, err error)
	// ApplyDelta is Apply when the table holds what the last Apply or
	// ApplyDelta gave it and delta is what changed since: it writes the
	// delta without looking at the rest of d.
	ApplyDelta(d *model.Datapath, delta *model.Delta) (writes int, err error)
	// Invalidate makes the next Apply read the kernel again.
	Invalidate()
	// Drops reads the drop counters.
	Drops() (Drops, error)
}

// Drops are the table's drop counters, in packets.
type Drops struct {
	// Pending: packets of addresses of the node's pod CIDRs not known yet.
	Pending uint64
	// Groups: packets no rule of the target group allowed.
	Groups map[GroupKey]uint64
}

// GroupKey names a target group's deny counter.
type GroupKey struct {
	Direction model.Direction
	ID        model.ID
}

// Controller is firewalld's daemon.Controller.
type Controller struct {
	log       *zap.Logger
	deps      daemon.Deps
	table     Table
	prepare   func() error
	factories []kube.Factory
	pods      corelisters.PodLister
	nss       corelisters.NamespaceLister
	policies  networkinglisters.NetworkPolicyLister
	nodes     corelisters.NodeLister
	problems  *problems.Reporter
	drops     *dropMetrics
	compiler  *policy.Compiler

	syncMu  sync.Mutex // held by Sync; Counts and the metrics read under it
	applied uint64
	writes  uint64 // netlink messages written to the table by this incarnation
	last    policy.Stats
	tableOK bool
	// prepared: the kernel settings took (they are retried until they do).
	prepared bool
	// synced is the last compile the trace explains.
	synced syncRecord
	// nodeAddrs are this node's addresses as the last sync's input had
	// them (the trace: traffic from and to the node is not policed).
	nodeAddrs []netip.Addr
}

var _ daemon.Controller = (*Controller)(nil)

// New wires a controller; nothing runs before Start. prepare (nil: none)
// sets what the table relies on in the kernel (bridge netfilter); it runs
// before every full sync. events may be nil.
func New(deps daemon.Deps, client kubernetes.Interface, table Table, prepare func() error, events problems.EventRecorder) *Controller {
	c := &Controller{log: deps.Log, deps: deps, table: table, prepare: prepare, compiler: policy.NewCompiler()}
	c.problems = problems.New("firewalld", deps.Log, events, deps.Metrics)
	c.drops = newDropMetrics(c)
	if deps.Metrics != nil {
		deps.Metrics.MustRegister(c.drops)
	}
	fac := informers.NewSharedInformerFactory(client, 0)
	onlyThisNode := informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", deps.Config.NodeName).String()
	})
	nodeFac := informers.NewSharedInformerFactoryWithOptions(client, 0, onlyThisNode)
	podInf := fac.Core().V1().Pods()
	// SetTransform fails only on a started informer; this one is new.
	_ = podInf.Informer().SetTransform(slimPod)
	// Every new version is recorded, even one the sync has no use for: a
	// sync that starts later reads it, so the next one (at the latest the
	// periodic one) reports it covered.
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { deps.Versions.Observe("pods", obj); deps.Trigger() },
		UpdateFunc: func(o, n any) {
			if !kube.SameVersion(o, n) {
				deps.Versions.Observe("pods", n)
			}
			if podChanged(o, n) {
				deps.Trigger()
			}
		},
		DeleteFunc: func(obj any) { deps.Versions.Observe("pods", obj); deps.Trigger() },
	})
	nsInf := fac.Core().V1().Namespaces()
	polInf := fac.Networking().V1().NetworkPolicies()
	nodeInf := nodeFac.Core().V1().Nodes()
	_, _ = nsInf.Informer().AddEventHandler(kube.OnChangeTracked(deps.Trigger, deps.Versions, "namespaces"))
	_, _ = polInf.Informer().AddEventHandler(kube.OnChangeTracked(deps.Trigger, deps.Versions, "networkpolicies"))
	_, _ = nodeInf.Informer().AddEventHandler(kube.OnChangeTracked(deps.Trigger, deps.Versions, "nodes"))
	c.pods, c.nss, c.policies, c.nodes = podInf.Lister(), nsInf.Lister(), polInf.Lister(), nodeInf.Lister()
	c.factories = []kube.Factory{fac, nodeFac}
	return c
}

// Start is part of daemon.Controller: it returns once every informer has
// listed. A sync with half the pods known would deny the rest their peers.
func (c *Controller) Start(ctx context.Context) error {
	return kube.StartAndSync(ctx, c.factories...)
}

// Sync is part of daemon.Controller: compile everything, apply the
// difference. A full sync re-reads the kernel first.
func (c *Controller) Sync(_ context.Context, full bool) error {
	in, addrs, err := c.input()
	if err != nil {
		return err
	}
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.nodeAddrs = addrs
	res := c.compiler.Compile(in)
	c.problems.Report(res.Problems, c.lookup)
	// The kernel settings (bridge netfilter) are set on full syncs and
	// until they succeed. Their failure does not stop the table from
	// being applied: the policies are enforced wherever they can be, and
	// the sync still fails (unhealthy) until the settings take.
	var prepErr error
	if c.prepare != nil && (full || !c.tableOK || !c.prepared) {
		if err := c.prepare(); err != nil {
			prepErr = fmt.Errorf("kernel settings: %w", err)
		}
		c.prepared = prepErr == nil
	}
	if full || !c.tableOK {
		c.table.Invalidate()
	}
	// Remember which policies own each group before the table changes, so
	// that the drops counted so far are credited to the right policies.
	if res.Full || !c.tableOK || full || res.Delta.Chains.Len() > 0 {
		// Chains are about to be made, rewritten or deleted, which starts
		// their counters again: credit what they counted so far first.
		// Reading every chain's counter costs a dump per chain, so pod
		// changes (set elements only) skip it.
		c.drops.setGroups(res.Groups)
	}
	apply := func() (int, error) { return c.table.ApplyDelta(res.Datapath, res.Delta) }
	if res.Full || !c.tableOK || full {
		apply = func() (int, error) { return c.table.Apply(res.Datapath) }
	}
	n, err := apply()
	c.writes += uint64(n)
	c.synced.record(err)
	if err != nil {
		// The table the kernel holds stays in force: the transaction is
		// all or nothing, so a failed sync never opens anything.
		c.tableOK = false
		return errors.Join(prepErr, fmt.Errorf("apply the nftables table: %w", err))
	}
	c.tableOK = true
	c.applied++
	c.last = res.Stats
	c.deps.Publisher.SetPolicyState(&nodev1.PolicyState{
		InForce:           true,
		AppliedGeneration: c.applied,
		Policies:          uint32(res.Stats.Policies),
		SelectedPods:      uint32(res.Stats.SelectedPods),
		Rules:             uint32(res.Stats.Rules),
		AppliedTime:       timestamppb.Now(),
	})
	return prepErr
}

// input reads the informers' caches: the compiler's input, and this
// node's addresses.
func (c *Controller) input() (policy.Input, []netip.Addr, error) {
	node, err := c.nodes.Get(c.deps.Config.NodeName)
	if err != nil && !apierrors.IsNotFound(err) {
		return policy.Input{}, nil, err
	}
	var routerd *coord.Facts
	if w := c.deps.Peers["routerd"]; w != nil {
		f := w.Facts()
		routerd = &f
	}
	in := policy.Input{Node: c.deps.Config.NodeName, PodCIDRs: podCIDRs(node, routerd)}
	addrs := nodeAddrs(node, routerd, in.PodCIDRs)
	var errs []error
	var e1, e2, e3 error
	in.Pods, e1 = c.pods.List(labels.Everything())
	in.Namespaces, e2 = c.nss.List(labels.Everything())
	in.Policies, e3 = c.policies.List(labels.Everything())
	errs = append(errs, e1, e2, e3)
	return in, addrs, errors.Join(errs...)
}

// Counts is part of daemon.Controller.
func (c *Controller) Counts() map[string]uint64 {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	return map[string]uint64{
		"policies":      uint64(c.last.Policies),
		"localPolicies": uint64(c.last.LocalPolicies),
		"selectedPods":  uint64(c.last.SelectedPods),
		"rules":         uint64(c.last.Rules),
		"pods":          uint64(c.last.Pods),
		"identities":    uint64(c.last.Identities),
		"groups":        uint64(c.last.Groups),
		"peerSets":      uint64(c.last.Peers),
		"applied":       c.applied,
		"tableWrites":   c.writes,
		"problems":      uint64(c.problems.Count()),
	}
}

// lookup finds the object a problem is about, for its event.
func (c *Controller) lookup(p problems.Problem) runtime.Object {
	switch p.Kind {
	case "NetworkPolicy":
		if np, err := c.policies.NetworkPolicies(p.Namespace).Get(p.Name); err == nil {
			return np
		}
	case "Pod":
		if pod, err := c.pods.Pods(p.Namespace).Get(p.Name); err == nil {
			return pod
		}
	}
	return nil
}
