package controller

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/firewalld/internal/policy"
	"github.com/nodenet/nodenet/internal/daemon"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// syncRecord is what a trace says of the sync it is based on: the
// compiler's state is that sync's, applied or not (err).
type syncRecord struct {
	generation uint64
	at         time.Time
	err        string
}

func (r *syncRecord) record(err error) {
	r.generation++
	r.at, r.err = time.Now(), ""
	if err != nil {
		r.err = err.Error()
	}
}

var _ daemon.GRPCServer = (*Controller)(nil)

// RegisterServices is part of daemon.GRPCServer: firewalld serves its trace.
func (c *Controller) RegisterServices(s grpc.ServiceRegistrar) {
	nodev1.RegisterFirewallTraceServiceServer(s, traceServer{c: c})
}

type traceServer struct {
	nodev1.UnimplementedFirewallTraceServiceServer
	c *Controller
}

// Trace is part of nodev1.FirewallTraceServiceServer.
func (s traceServer) Trace(_ context.Context, req *nodev1.FirewallTraceServiceTraceRequest) (*nodev1.FirewallTraceServiceTraceResponse, error) {
	q, err := traceQuery(req)
	if err != nil {
		return nil, err
	}
	return s.c.trace(q)
}

func traceQuery(req *nodev1.FirewallTraceServiceTraceRequest) (policy.Query, error) {
	var q policy.Query
	var err error
	switch src := req.GetSource().(type) {
	case *nodev1.FirewallTraceServiceTraceRequest_FromPod:
		q.From, err = podEnd(src.FromPod)
	case *nodev1.FirewallTraceServiceTraceRequest_FromIp:
		q.From, err = ipEnd(src.FromIp)
	default:
		err = status.Error(codes.InvalidArgument, "no source: want a pod or an IP address")
	}
	if err != nil {
		return q, err
	}
	switch dst := req.GetDestination().(type) {
	case *nodev1.FirewallTraceServiceTraceRequest_ToPod:
		q.To, err = podEnd(dst.ToPod)
	case *nodev1.FirewallTraceServiceTraceRequest_ToIp:
		q.To, err = ipEnd(dst.ToIp)
	default:
		err = status.Error(codes.InvalidArgument, "no destination: want a pod or an IP address")
	}
	if err != nil {
		return q, err
	}
	if req.GetToPort() < 1 || req.GetToPort() > 65535 {
		return q, status.Errorf(codes.InvalidArgument, "destination port %d is out of range", req.GetToPort())
	}
	q.Port = uint16(req.GetToPort())
	switch req.GetToProtocol() {
	case nodev1.Protocol_PROTOCOL_TCP, nodev1.Protocol_PROTOCOL_UNSPECIFIED:
		q.Proto = model.ProtoTCP
	case nodev1.Protocol_PROTOCOL_UDP:
		q.Proto = model.ProtoUDP
	case nodev1.Protocol_PROTOCOL_SCTP:
		q.Proto = model.ProtoSCTP
	default:
		return q, status.Errorf(codes.InvalidArgument, "unknown protocol %v", req.GetToProtocol())
	}
	return q, nil
}

func podEnd(s string) (policy.End, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return policy.End{}, status.Errorf(codes.InvalidArgument, "pod %q: want namespace/name", s)
	}
	return policy.End{Pod: s}, nil
}

func ipEnd(s string) (policy.End, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return policy.End{}, status.Errorf(codes.InvalidArgument, "%q is not an IP address", s)
	}
	return policy.End{Addr: a.Unmap()}, nil
}

// trace runs under syncMu: the compiler is not safe concurrently with
// Sync, and under the lock it holds exactly the last sync's compile.
func (c *Controller) trace(q policy.Query) (*nodev1.FirewallTraceServiceTraceResponse, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	if c.synced.generation == 0 {
		return nil, status.Error(codes.Unavailable, "firewalld has not synced yet: nothing to trace")
	}
	tr, err := c.compiler.Trace(q)
	if err != nil {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	resp := traceResponse(tr, q)
	hookVerdict(resp, tr, c.nodeAddrs)
	resp.NodeName, resp.SyncGeneration, resp.SyncError = c.deps.Config.NodeName, c.synced.generation, c.synced.err
	resp.SyncTime = timestamppb.New(c.synced.at)
	return resp, nil
}

// protoNames are the protocols a query can carry.
var protoNames = map[uint8]string{model.ProtoTCP: "TCP", model.ProtoUDP: "UDP", model.ProtoSCTP: "SCTP"}

func portString(q policy.Query) string { return fmt.Sprintf("%d/%s", q.Port, protoNames[q.Proto]) }

// hookVerdict puts in what the table's base chains decide before its pods
// chain (model.Datapath.Judge) is reached, or that the packet never meets
// them: a pod's packets to its own address stay inside the pod (loopback);
// traffic to the node itself takes the input hook, which is not policed;
// the node's own connections (kubelet probes) are accepted in the output
// hook (localSourceRule, package nft). The directions still say what the
// policies would have decided.
func hookVerdict(resp *nodev1.FirewallTraceServiceTraceResponse, tr policy.Trace, node []netip.Addr) {
	var code, msg string
	switch {
	case tr.From.Addr == tr.To.Addr:
		code, msg = "SamePod", "a pod's packets to its own address never leave it (loopback): no policy applies"
	case slices.Contains(node, tr.To.Addr):
		code, msg = "ToThisNode", "the destination is this node: traffic to the node itself is not policed"
	case slices.Contains(node, tr.From.Addr):
		code, msg = "FromThisNode", "the source is this node: the node's own connections (kubelet probes, host processes) are not policed"
	default:
		return
	}
	resp.Verdict = nodev1.FirewallTraceVerdict_FIREWALL_TRACE_VERDICT_ALLOWED
	resp.Reasons = []*nodev1.TraceReason{{Code: code, Message: msg}}
}
