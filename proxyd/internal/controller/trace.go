package controller

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/proxyd/internal/desired"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"
)

// syncRecord is what a trace says of the sync it is based on.
type syncRecord struct {
	generation uint64
	at         time.Time
	err        string
	node       nodeFacts
}

func (r *syncRecord) record(node nodeFacts, at time.Time, err error) {
	r.generation++
	r.at, r.node, r.err = at, node, ""
	if err != nil {
		r.err = err.Error()
	}
}

var _ daemon.GRPCServer = (*Controller)(nil)

// RegisterServices is part of daemon.GRPCServer: proxyd serves its trace.
func (c *Controller) RegisterServices(s grpc.ServiceRegistrar) {
	nodev1.RegisterProxyTraceServiceServer(s, traceServer{c: c})
}

type traceServer struct {
	nodev1.UnimplementedProxyTraceServiceServer
	c *Controller
}

// Trace is part of nodev1.ProxyTraceServiceServer.
func (s traceServer) Trace(_ context.Context, req *nodev1.ProxyTraceServiceTraceRequest) (*nodev1.ProxyTraceServiceTraceResponse, error) {
	to, err := traceDestination(req)
	if err != nil {
		return nil, err
	}
	src, err := s.c.traceSource(req, to.Addr)
	if err != nil {
		return nil, err
	}
	return s.c.trace(src, to)
}

func traceDestination(req *nodev1.ProxyTraceServiceTraceRequest) (model.VSKey, error) {
	a, err := netip.ParseAddr(req.GetToIp())
	if err != nil || a.Zone() != "" {
		return model.VSKey{}, status.Errorf(codes.InvalidArgument, "destination %q is not an IP address", req.GetToIp())
	}
	if req.GetToPort() < 1 || req.GetToPort() > 65535 {
		return model.VSKey{}, status.Errorf(codes.InvalidArgument, "destination port %d is out of range", req.GetToPort())
	}
	k := model.VSKey{Addr: a.Unmap(), Port: uint16(req.GetToPort())}
	switch req.GetToProtocol() {
	case nodev1.Protocol_PROTOCOL_TCP, nodev1.Protocol_PROTOCOL_UNSPECIFIED:
		k.Proto = model.TCP
	case nodev1.Protocol_PROTOCOL_UDP:
		k.Proto = model.UDP
	case nodev1.Protocol_PROTOCOL_SCTP:
		k.Proto = model.SCTP
	default:
		return model.VSKey{}, status.Errorf(codes.InvalidArgument, "unknown protocol %v", req.GetToProtocol())
	}
	return k, nil
}

// traceSource resolves the request's source. A pod is looked up among the
// endpoints of the EndpointSlices proxyd watches (it has no pod informer: a
// pod no Service selects is unknown to it).
func (c *Controller) traceSource(req *nodev1.ProxyTraceServiceTraceRequest, to netip.Addr) (trace.Source, error) {
	switch src := req.GetSource().(type) {
	case *nodev1.ProxyTraceServiceTraceRequest_FromNode:
		return trace.Source{Kind: trace.SourceNode}, nil
	case *nodev1.ProxyTraceServiceTraceRequest_FromIp:
		a, err := netip.ParseAddr(src.FromIp)
		if err != nil || a.Zone() != "" {
			return trace.Source{}, status.Errorf(codes.InvalidArgument, "source %q is not an IP address", src.FromIp)
		}
		return trace.Source{Kind: trace.SourceIP, Addr: a.Unmap()}, nil
	case *nodev1.ProxyTraceServiceTraceRequest_FromPod:
		ns, name, ok := strings.Cut(src.FromPod, "/")
		if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return trace.Source{}, status.Errorf(codes.InvalidArgument, "pod %q: want namespace/name", src.FromPod)
		}
		a, found := c.podAddr(ns, name, to.Is4())
		if !found {
			return trace.Source{}, status.Errorf(codes.NotFound,
				"unknown pod %s: proxyd knows pods only as endpoints of Services (EndpointSlices); give its address with --from <IP>", src.FromPod)
		}
		return trace.Source{Kind: trace.SourcePod, Pod: src.FromPod, Addr: a}, nil
	}
	return trace.Source{}, status.Error(codes.InvalidArgument, "no source: want a pod, the node or an IP address")
}

// podAddr finds the pod's address in the slices of its namespace: of
// the destination's family (v4 or not) when the pod has one, as a
// dual-stack pod's packet to an IPv6 VIP leaves from its IPv6 address.
func (c *Controller) podAddr(ns, name string, v4 bool) (netip.Addr, bool) {
	objs, err := c.sliceIndexer.ByIndex(cache.NamespaceIndex, ns)
	if err != nil {
		objs = c.sliceIndexer.List() // no namespace index: scan them all
	}
	var other netip.Addr
	for _, o := range objs {
		sl, ok := o.(*discoveryv1.EndpointSlice)
		if !ok || sl.Namespace != ns {
			continue
		}
		for _, ep := range sl.Endpoints {
			r := ep.TargetRef
			if r == nil || r.Kind != "Pod" || r.Name != name || (r.Namespace != "" && r.Namespace != ns) || len(ep.Addresses) == 0 {
				continue
			}
			a, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil {
				continue
			}
			if a = a.Unmap(); a.Is4() == v4 {
				return a, true
			}
			other = a
		}
	}
	return other, other.IsValid()
}

// trace runs under syncMu: it reads the store and cache as the last sync
// left them (and the reconciler, which is not safe concurrently with Sync).
func (c *Controller) trace(src trace.Source, to model.VSKey) (*nodev1.ProxyTraceServiceTraceResponse, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.synced.generation == 0 {
		return nil, status.Error(codes.Unavailable, "proxyd has not synced yet: nothing to trace")
	}
	snap := trace.Snapshot{
		Generation: c.synced.generation, Time: c.synced.at, Err: c.synced.err,
		Node: c.synced.node.Node, PodCIDRs: c.synced.node.PodCIDRs,
		Config:         desired.Config{DefaultScheduler: c.cfg.Scheduler},
		VirtualService: c.store.winner,
		KeysAt: func(a netip.Addr) []model.VSKey {
			var out []model.VSKey
			for k := range c.store.claims {
				if k.Addr == a {
					out = append(out, k)
				}
			}
			slices.SortFunc(out, model.VSKey.Compare)
			return out
		},
		Inputs:     c.cache.inputs,
		Programmed: c.kernel.Reconciler.IsProgrammed,
	}
	return trace.Run(snap, src, to), nil
}
