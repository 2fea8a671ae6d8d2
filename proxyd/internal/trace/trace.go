package trace

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/proxyd/internal/desired"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/nft"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Source kinds, as the response names them.
const (
	SourcePod  = "pod"
	SourceNode = "node"
	SourceIP   = "ip"
)

// Source is where the packet comes from, resolved to an address (a node
// source gets one in Run).
type Source struct {
	Kind string
	Pod  string // "namespace/name" for a pod
	Addr netip.Addr
}

// Snapshot is the state a trace reads: what one sync computed. Its
// functions are called only during Run (the caller may hold a lock).
type Snapshot struct {
	Generation uint64
	Time       time.Time
	Err        string
	Node       desired.Node
	PodCIDRs   []netip.Prefix
	Config     desired.Config
	// VirtualService is the virtual service wanted at k (nil: none).
	VirtualService func(k model.VSKey) *model.VirtualService
	// KeysAt lists the wanted virtual services on addr, sorted.
	KeysAt func(addr netip.Addr) []model.VSKey
	// Inputs are the Service and slices its virtual services were
	// computed from.
	Inputs func(svc types.NamespacedName) (*corev1.Service, []*discoveryv1.EndpointSlice, bool)
	// Programmed reports whether k is in IPVS (nil: not known, not said).
	Programmed func(k model.VSKey) bool
}

func reason(code, format string, args ...any) *nodev1.TraceReason {
	return &nodev1.TraceReason{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Run traces a packet from src to the virtual service key to.
func Run(s Snapshot, src Source, to model.VSKey) *nodev1.ProxyTraceServiceTraceResponse {
	to.Addr = to.Addr.Unmap()
	resp := &nodev1.ProxyTraceServiceTraceResponse{
		NodeName:       s.Node.Name,
		SyncGeneration: s.Generation,
		SyncError:      s.Err,
		Destination:    to.String(),
	}
	if !s.Time.IsZero() {
		resp.SyncTime = timestamppb.New(s.Time)
	}
	srcAddr := src.Addr.Unmap()
	if src.Kind == SourceNode && !srcAddr.IsValid() {
		// The kernel picks the source of the node's own packets; every
		// address of the node is outside its pod CIDRs, which is all the
		// decisions below look at (bar source ranges).
		if i := slices.IndexFunc(s.Node.IPs, func(a netip.Addr) bool { return a.Unmap().Is4() == to.Addr.Is4() }); i >= 0 {
			srcAddr = s.Node.IPs[i].Unmap()
		}
	}
	table := nft.Build(model.State{}, s.PodCIDRs)
	resp.Source = &nodev1.TraceSource{Kind: src.Kind, Pod: src.Pod, LocalPod: srcAddr.IsValid() && table.InPodCIDRs(srcAddr)}
	if srcAddr.IsValid() {
		resp.Source.Ip = srcAddr.String()
	}

	vs := s.VirtualService(to)
	if vs == nil {
		explainNotServed(s, to, resp)
		return resp
	}
	table = nft.Build(model.State{Services: []*model.VirtualService{vs}}, s.PodCIDRs)
	resp.Service = service(vs)
	if s.Programmed != nil {
		resp.Service.Programmed = s.Programmed(to)
	}
	var x desired.Explanation
	explained := false
	if svc, sl, ok := s.Inputs(vs.Service); ok {
		x, explained = desired.Explain(svc, sl, s.Node, s.Config, to)
	}
	if explained {
		resp.Service.TrafficPolicy = map[bool]string{true: "Local", false: "Cluster"}[x.PolicyLocal]
		resp.Service.TrafficPolicyField = x.PolicyField
		if x.Topology != "" {
			if x.TopologyApplied {
				resp.Service.Topology = reason("TopologyApplied", "%s: the ready endpoints are narrowed to the ones hinted for this node or zone", x.Topology)
			} else {
				resp.Service.Topology = reason("TopologyNotApplied", "%s asked for, but the hints do not narrow the ready endpoints (missing on some, none for this node or zone, or the policy is Local): all of them are used", x.Topology)
			}
		}
	}
	resp.Endpoints = endpoints(vs, x, explained, table, to, srcAddr)

	switch {
	case table.Drops(to, srcAddr):
		resp.Verdict = nodev1.TraceVerdict_TRACE_VERDICT_DROP
		if len(vs.SourceRanges) == 0 {
			resp.Reasons = append(resp.Reasons, reason("SourceRangeDenied", "loadBalancerSourceRanges are set but none is valid: nobody may connect to %s", to))
		} else {
			resp.Reasons = append(resp.Reasons, reason("SourceRangeDenied", "source %s is in none of the loadBalancerSourceRanges %s: proxyd's nftables table drops it before IPVS", addrOrUnknown(srcAddr), prefixes(vs.SourceRanges)))
		}
	case len(vs.Dests) == 0:
		resp.Verdict = nodev1.TraceVerdict_TRACE_VERDICT_REJECT
		if explained && x.PolicyLocal && slices.ContainsFunc(x.Candidates, func(c desired.Candidate) bool { return c.Ready }) {
			resp.Reasons = append(resp.Reasons, reason("NoLocalEndpoints", "%s is Local and no endpoint on this node serves: IPVS has no real server and answers ICMP port unreachable (ready endpoints elsewhere are not used)", x.PolicyField))
		} else {
			resp.Reasons = append(resp.Reasons, reason("NoEndpoints", "no endpoint is ready or serving: IPVS has no real server and answers ICMP port unreachable"))
		}
	default:
		resp.Verdict = nodev1.TraceVerdict_TRACE_VERDICT_FORWARD
		resp.Reasons = append(resp.Reasons, reason("Endpoints", "IPVS sends it to one of %d endpoint(s), chosen by scheduler %s%s", len(vs.Dests), vs.Scheduler, affinityNote(vs)))
		resp.Masquerade, resp.MasqueradeAlways = masquerade(table, to, srcAddr, resp.Endpoints, x.PolicyField)
	}
	if resp.Verdict != nodev1.TraceVerdict_TRACE_VERDICT_FORWARD {
		for _, e := range resp.Endpoints {
			e.Masquerade = false // the packet goes to no endpoint
		}
	}
	if s.Programmed != nil && !resp.Service.Programmed {
		resp.Reasons = append(resp.Reasons, reason("NotProgrammed", "the last sync did not put this virtual service into IPVS (see sync_error): the kernel may still do something else"))
	}
	return resp
}

func explainNotServed(s Snapshot, to model.VSKey, resp *nodev1.ProxyTraceServiceTraceResponse) {
	resp.Verdict = nodev1.TraceVerdict_TRACE_VERDICT_NOT_SERVED
	var others []model.VSKey
	if s.KeysAt != nil {
		others = s.KeysAt(to.Addr)
	}
	for _, k := range others {
		resp.OtherPorts = append(resp.OtherPorts, k.String())
	}
	nodeAddr := slices.ContainsFunc(s.Node.IPs, func(a netip.Addr) bool { return a.Unmap() == to.Addr })
	switch {
	case nodeAddr && len(others) > 0:
		resp.Reasons = append(resp.Reasons, reason("PortNotServed", "%s is an address of this node and no NodePort is %d/%s: the node's own sockets get it", to.Addr, to.Port, to.Proto))
	case len(others) > 0:
		resp.Reasons = append(resp.Reasons, reason("PortNotServed", "%s is a Service address, but no Service port is %d/%s on it", to.Addr, to.Port, to.Proto))
	case nodeAddr:
		resp.Reasons = append(resp.Reasons, reason("NoVirtualService", "%s is an address of this node and no NodePort is on it: the node's own sockets get it", to.Addr))
	default:
		resp.Reasons = append(resp.Reasons, reason("NoVirtualService", "no Service proxyd serves has %s: the node routes it as any other packet", to.Addr))
	}
}

func service(vs *model.VirtualService) *nodev1.TraceService {
	out := &nodev1.TraceService{
		Name: vs.Service.String(), PortName: vs.PortName, Kind: vipKind(vs.Kind), Scheduler: vs.Scheduler,
		SessionAffinity: "None", TrafficPolicy: "Cluster", TrafficPolicyField: "internalTrafficPolicy",
	}
	if vs.Kind.External() {
		out.TrafficPolicyField = "externalTrafficPolicy"
		if vs.ExternalLocal {
			out.TrafficPolicy = "Local"
		}
	}
	if vs.PersistenceTimeout > 0 {
		out.SessionAffinity, out.AffinityTimeoutSeconds = "ClientIP", vs.PersistenceTimeout
	}
	if vs.SourceRestricted {
		out.SourceRanges = strings.Split(prefixes(vs.SourceRanges), ",")
		if len(vs.SourceRanges) == 0 {
			out.SourceRanges = nil
		}
	}
	return out
}

// endpoints lists the candidates (the virtual service's real servers when
// the Service's inputs are not known).
func endpoints(vs *model.VirtualService, x desired.Explanation, explained bool, table nft.Desired, to model.VSKey, src netip.Addr) []*nodev1.TraceEndpoint {
	weights := make(map[model.DestKey]uint32, len(vs.Dests))
	for _, d := range vs.Dests {
		weights[d.DestKey] = d.Weight
	}
	var out []*nodev1.TraceEndpoint
	add := func(e *nodev1.TraceEndpoint, addr netip.Addr) {
		if e.Selected {
			e.Masquerade, _ = table.Masquerades(to, src, addr)
		}
		out = append(out, e)
	}
	if !explained {
		for _, d := range vs.Dests {
			add(&nodev1.TraceEndpoint{Address: d.DestKey.String(), Selected: true, Weight: d.Weight,
				Reason: reason("RealServer", "a real server of the virtual service (the Service's objects are gone since the sync)")}, d.Addr)
		}
		return out
	}
	for _, c := range x.Candidates {
		w, real := weights[model.DestKey{Addr: c.Addr.Addr(), Port: c.Addr.Port()}]
		add(&nodev1.TraceEndpoint{
			Address: c.Addr.String(), Node: c.Node, Pod: c.Pod, Selected: real, Weight: w,
			Reason: &nodev1.TraceReason{Code: c.Reason, Message: c.Message},
			Ready:  c.Ready, Serving: c.Serving, Terminating: c.Terminating,
		}, c.Addr.Addr())
	}
	return out
}

// masquerade sums up the table's decision over the selected endpoints.
func masquerade(table nft.Desired, to model.VSKey, src netip.Addr, eps []*nodev1.TraceEndpoint, policyField string) (*nodev1.TraceReason, bool) {
	all, some := true, false
	for _, e := range eps {
		if e.Selected {
			all = all && e.Masquerade
			some = some || e.Masquerade
		}
	}
	noCIDRs := ""
	if len(table.PodCIDRs) == 0 {
		noCIDRs = " (this node's pod CIDRs are not known yet: every client counts as outside)"
	}
	_, mark := table.Masquerades(to, src, netip.Addr{})
	switch {
	case mark == nft.MasqueradeMark:
		return reason("SourceOutsidePodCIDRs", "source %s is outside this node's pod CIDRs and the VIP does not keep client addresses: masqueraded to the node's address, so replies come back through this node%s", addrOrUnknown(src), noCIDRs), all
	case !table.InPodCIDRs(src):
		return reason("ExternalTrafficPolicyLocal", "%s is Local: the client's address is kept (no SNAT), and only endpoints on this node are used", policyField), false
	case some:
		return reason("HairpinLocalEndpoint", "source is a pod of this node: masqueraded when IPVS picks an endpoint in this node's pod CIDRs (else the endpoint would answer the client directly over the bridge)"), all
	}
	return reason("PodSourceKept", "source is a pod of this node and no selected endpoint is in this node's pod CIDRs: the pod's address is kept"), false
}

func affinityNote(vs *model.VirtualService) string {
	if vs.PersistenceTimeout == 0 {
		return ""
	}
	return fmt.Sprintf("; sessionAffinity ClientIP: a client sticks to its endpoint for %ds", vs.PersistenceTimeout)
}

func prefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func addrOrUnknown(a netip.Addr) string {
	if !a.IsValid() {
		return "(unknown)"
	}
	return a.String()
}

func vipKind(k model.Kind) nodev1.VIPKind {
	switch k {
	case model.ClusterIP:
		return nodev1.VIPKind_VIP_KIND_CLUSTER_IP
	case model.ExternalIP:
		return nodev1.VIPKind_VIP_KIND_EXTERNAL_IP
	case model.LoadBalancer:
		return nodev1.VIPKind_VIP_KIND_LOAD_BALANCER
	case model.NodePort:
		return nodev1.VIPKind_VIP_KIND_NODE_PORT
	}
	return nodev1.VIPKind_VIP_KIND_UNSPECIFIED
}
