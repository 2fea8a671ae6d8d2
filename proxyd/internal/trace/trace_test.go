package trace

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/nft"
)

var (
	local    = ep{addr: "198.18.128.5", node: thisNode}
	remote   = ep{addr: "198.18.129.5", node: peerNode}
	notReady = ep{addr: "198.18.129.6", node: peerNode, notReady: true, notServing: true}
	cidrs    = []netip.Prefix{netip.MustParsePrefix(podCIDR)}
	localPod = ipSource("198.18.128.7")
	client   = ipSource(outside)
	node     = Source{Kind: SourceNode}
)

// traceCase: the verdict, the reason codes, each candidate as
// "address code" (selected ones with a "+"), and the masquerade code.
type traceCase struct {
	name    string
	w       world
	from    Source
	to      string
	verdict nodev1.TraceVerdict
	reasons []string
	eps     []string
	masq    string
	masqAll bool
	check   func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse)
}

const (
	forward   = nodev1.TraceVerdict_TRACE_VERDICT_FORWARD
	reject    = nodev1.TraceVerdict_TRACE_VERDICT_REJECT
	drop      = nodev1.TraceVerdict_TRACE_VERDICT_DROP
	notServed = nodev1.TraceVerdict_TRACE_VERDICT_NOT_SERVED
)

func traceCases() []traceCase {
	web := func(mods ...svcMod) *corev1Service { return svc("web", "198.19.0.10", mods...) }
	return []traceCase{{
		name: "ClusterIP, round robin, from a local pod: hairpin only to the local endpoint",
		w:    world{services: svcs(web()), slices: sls(slice("web", local, remote, notReady)), podCIDRs: cidrs},
		from: localPod, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.128.5:8080 Ready", "+198.18.129.5:8080 Ready", "198.18.129.6:8080 NotReady"},
		masq: "HairpinLocalEndpoint",
		check: func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse) {
			s := r.GetService()
			if s.GetScheduler() != "rr" || s.GetSessionAffinity() != "None" || s.GetKind() != nodev1.VIPKind_VIP_KIND_CLUSTER_IP ||
				s.GetTrafficPolicyField() != "internalTrafficPolicy" || s.GetTrafficPolicy() != "Cluster" {
				t.Errorf("service %v", s)
			}
			if e := r.GetEndpoints(); e[0].GetWeight() != 1 || !e[0].GetMasquerade() || e[1].GetMasquerade() || e[0].GetPod() != "shop/web-a" {
				t.Errorf("endpoints %v", e)
			}
			if r.GetSyncGeneration() != 7 || !r.GetSyncTime().AsTime().Equal(syncTime) || !r.GetSource().GetLocalPod() {
				t.Errorf("sync or source: %v", r)
			}
		},
	}, {
		name: "ClusterIP with the wrr annotation, from the node: masqueraded",
		w:    world{services: svcs(web(scheduler("wrr"))), slices: sls(slice("web", local, remote)), podCIDRs: cidrs},
		from: node, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.128.5:8080 Ready", "+198.18.129.5:8080 Ready"},
		masq: "SourceOutsidePodCIDRs", masqAll: true,
		check: func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse) {
			if r.GetService().GetScheduler() != "wrr" || r.GetSource().GetIp() != nodeIP {
				t.Errorf("scheduler %q, source %v", r.GetService().GetScheduler(), r.GetSource())
			}
		},
	}, {
		name: "no endpoints: rejected",
		w:    world{services: svcs(web()), slices: sls(slice("web", notReady)), podCIDRs: cidrs},
		from: client, to: "198.19.0.10:80", verdict: reject, reasons: []string{"NoEndpoints"},
		eps: []string{"198.18.129.6:8080 NotReady"},
	}, {
		name: "externalTrafficPolicy Local NodePort with a local endpoint: client address kept",
		w:    world{services: svcs(web(nodePort(30080), externalLocal)), slices: sls(slice("web", local, remote)), podCIDRs: cidrs},
		from: client, to: nodeIP + ":30080", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.128.5:8080 ReadyLocal", "198.18.129.5:8080 NotLocal"},
		masq: "ExternalTrafficPolicyLocal",
		check: func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse) {
			if s := r.GetService(); s.GetKind() != nodev1.VIPKind_VIP_KIND_NODE_PORT || s.GetTrafficPolicy() != "Local" || s.GetTrafficPolicyField() != "externalTrafficPolicy" {
				t.Errorf("service %v", s)
			}
		},
	}, {
		name: "the ClusterIP of the same Service keeps policy Cluster",
		w:    world{services: svcs(web(nodePort(30080), externalLocal)), slices: sls(slice("web", local, remote)), podCIDRs: cidrs},
		from: client, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.128.5:8080 Ready", "+198.18.129.5:8080 Ready"},
		masq: "SourceOutsidePodCIDRs", masqAll: true,
	}, {
		name: "externalTrafficPolicy Local NodePort without a local endpoint: rejected",
		w:    world{services: svcs(web(nodePort(30080), externalLocal)), slices: sls(slice("web", remote)), podCIDRs: cidrs},
		from: client, to: nodeIP + ":30080", verdict: reject, reasons: []string{"NoLocalEndpoints"},
		eps: []string{"198.18.129.5:8080 NotLocal"},
	}, {
		name: "a NodePort without policy Local: every endpoint, masqueraded",
		w:    world{services: svcs(web(nodePort(30080))), slices: sls(slice("web", local, remote)), podCIDRs: cidrs},
		from: client, to: nodeIP + ":30080", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.128.5:8080 Ready", "+198.18.129.5:8080 Ready"},
		masq: "SourceOutsidePodCIDRs", masqAll: true,
	}, {
		name: "internalTrafficPolicy Local: only the local endpoint, from a local pod",
		w:    world{services: svcs(web(internalLocal)), slices: sls(slice("web", local, remote)), podCIDRs: cidrs},
		from: localPod, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.128.5:8080 ReadyLocal", "198.18.129.5:8080 NotLocal"},
		masq: "HairpinLocalEndpoint", masqAll: true,
	}, {
		name: "internalTrafficPolicy Local without a local endpoint: rejected",
		w:    world{services: svcs(web(internalLocal)), slices: sls(slice("web", remote)), podCIDRs: cidrs},
		from: localPod, to: "198.19.0.10:80", verdict: reject, reasons: []string{"NoLocalEndpoints"},
		eps: []string{"198.18.129.5:8080 NotLocal"},
	}, {
		name: "only terminating endpoints that still serve: the fallback",
		w: world{services: svcs(web()), podCIDRs: cidrs, slices: sls(slice("web",
			ep{addr: "198.18.129.5", node: peerNode, notReady: true, terminating: true},
			ep{addr: "198.18.129.6", node: peerNode, notReady: true, terminating: true, notServing: true}))},
		from: localPod, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.129.5:8080 ServingTerminatingFallback", "198.18.129.6:8080 NotReady"},
		masq: "PodSourceKept",
	}, {
		name: "a terminating endpoint beside a ready one is not used",
		w: world{services: svcs(web()), podCIDRs: cidrs, slices: sls(slice("web", remote,
			ep{addr: "198.18.129.6", node: peerNode, notReady: true, terminating: true}))},
		from: localPod, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.129.5:8080 Ready", "198.18.129.6:8080 Terminating"},
		masq: "PodSourceKept",
	}, {
		name: "loadBalancerSourceRanges: a source in the ranges passes",
		w:    world{services: svcs(web(loadBalancer("198.19.200.1", "198.18.50.0/24"))), slices: sls(slice("web", remote)), podCIDRs: cidrs},
		from: client, to: "198.19.200.1:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.129.5:8080 Ready"},
		masq: "SourceOutsidePodCIDRs", masqAll: true,
		check: func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse) {
			if s := r.GetService(); s.GetKind() != nodev1.VIPKind_VIP_KIND_LOAD_BALANCER || !slices.Equal(s.GetSourceRanges(), []string{"198.18.50.0/24"}) {
				t.Errorf("service %v", s)
			}
		},
	}, {
		name: "loadBalancerSourceRanges: a source outside them is dropped",
		w:    world{services: svcs(web(loadBalancer("198.19.200.1", "198.18.50.0/24"))), slices: sls(slice("web", remote)), podCIDRs: cidrs},
		from: ipSource("198.18.60.1"), to: "198.19.200.1:80", verdict: drop, reasons: []string{"SourceRangeDenied"},
		eps: []string{"+198.18.129.5:8080 Ready"},
	}, {
		name: "loadBalancerSourceRanges do not restrict the NodePort",
		w:    world{services: svcs(web(loadBalancer("198.19.200.1", "198.18.50.0/24"))), slices: sls(slice("web", remote)), podCIDRs: cidrs},
		from: ipSource("198.18.60.1"), to: nodeIP + ":30080", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.129.5:8080 Ready"},
		masq: "SourceOutsidePodCIDRs", masqAll: true,
	}, {
		name: "sessionAffinity ClientIP",
		w:    world{services: svcs(web(affinity(600))), slices: sls(slice("web", remote)), podCIDRs: cidrs},
		from: client, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.129.5:8080 Ready"},
		masq: "SourceOutsidePodCIDRs", masqAll: true,
		check: func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse) {
			if s := r.GetService(); s.GetSessionAffinity() != "ClientIP" || s.GetAffinityTimeoutSeconds() != 600 {
				t.Errorf("service %v", s)
			}
		},
	}, {
		name: "topology hints narrow to this zone",
		w: world{services: svcs(web(preferClose)), podCIDRs: cidrs, slices: sls(slice("web",
			ep{addr: "198.18.129.5", node: peerNode, zone: "zone-a"}, ep{addr: "198.18.129.6", node: peerNode, zone: "zone-b"}))},
		from: client, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.129.5:8080 TopologyHint", "198.18.129.6:8080 OtherTopology"},
		masq: "SourceOutsidePodCIDRs", masqAll: true,
		check: func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse) {
			if r.GetService().GetTopology().GetCode() != "TopologyApplied" {
				t.Errorf("topology %v", r.GetService().GetTopology())
			}
		},
	}, {
		name: "topology asked for without hints: all ready endpoints",
		w:    world{services: svcs(web(preferClose)), podCIDRs: cidrs, slices: sls(slice("web", local, remote))},
		from: client, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.128.5:8080 Ready", "+198.18.129.5:8080 Ready"},
		masq: "SourceOutsidePodCIDRs", masqAll: true,
		check: func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse) {
			if r.GetService().GetTopology().GetCode() != "TopologyNotApplied" {
				t.Errorf("topology %v", r.GetService().GetTopology())
			}
		},
	}, {
		name: "pod CIDRs not known yet: a pod counts as outside",
		w:    world{services: svcs(web()), slices: sls(slice("web", local))},
		from: localPod, to: "198.19.0.10:80", verdict: forward, reasons: []string{"Endpoints"},
		eps:  []string{"+198.18.128.5:8080 Ready"},
		masq: "SourceOutsidePodCIDRs", masqAll: true,
	}, {
		name: "another port of a Service address",
		w:    world{services: svcs(web()), slices: sls(slice("web", local)), podCIDRs: cidrs},
		from: client, to: "198.19.0.10:81", verdict: notServed, reasons: []string{"PortNotServed"},
		check: func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse) {
			if !slices.Equal(r.GetOtherPorts(), []string{"198.19.0.10:80/TCP"}) || r.GetService() != nil {
				t.Errorf("other ports %v, service %v", r.GetOtherPorts(), r.GetService())
			}
		},
	}, {
		name: "an address no Service has",
		w:    world{services: svcs(web()), podCIDRs: cidrs},
		from: client, to: "198.19.9.9:80", verdict: notServed, reasons: []string{"NoVirtualService"},
	}, {
		name: "a node address on a port that is no NodePort",
		w:    world{services: svcs(web(nodePort(30080))), podCIDRs: cidrs},
		from: client, to: nodeIP + ":22", verdict: notServed, reasons: []string{"PortNotServed"},
		check: func(t *testing.T, r *nodev1.ProxyTraceServiceTraceResponse) {
			if !slices.Equal(r.GetOtherPorts(), []string{nodeIP + ":30080/TCP"}) {
				t.Errorf("other ports %v", r.GetOtherPorts())
			}
		},
	}}
}

func TestTrace(t *testing.T) {
	for _, tc := range traceCases() {
		t.Run(tc.name, func(t *testing.T) {
			snap, st := tc.w.snapshot()
			to := key(tc.to)
			r := Run(snap, tc.from, to)
			if r.GetVerdict() != tc.verdict {
				t.Errorf("verdict %v, want %v: %v", r.GetVerdict(), tc.verdict, r.GetReasons())
			}
			var codes, eps []string
			for _, x := range r.GetReasons() {
				codes = append(codes, x.GetCode())
			}
			for _, e := range r.GetEndpoints() {
				mark := ""
				if e.GetSelected() {
					mark = "+"
				}
				eps = append(eps, mark+e.GetAddress()+" "+e.GetReason().GetCode())
			}
			if diff := cmp.Diff(tc.reasons, codes); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.eps, eps); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
			if got := r.GetMasquerade().GetCode(); got != tc.masq || r.GetMasqueradeAlways() != tc.masqAll {
				t.Errorf("masquerade %q always %v, want %q %v", got, r.GetMasqueradeAlways(), tc.masq, tc.masqAll)
			}
			agreesWithModel(t, st, tc.w.podCIDRs, r, to)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// agreesWithModel checks the trace against the desired state the kernel is
// programmed from: the selected endpoints are the virtual service's real
// servers, and drop and masquerade are what the whole table (nft.Build of
// the whole state) decides.
func agreesWithModel(t *testing.T, st model.State, podCIDRs []netip.Prefix, r *nodev1.ProxyTraceServiceTraceResponse, to model.VSKey) {
	t.Helper()
	i := slices.IndexFunc(st.Services, func(vs *model.VirtualService) bool { return vs.VSKey == to })
	if i < 0 {
		if r.GetVerdict() != notServed {
			t.Errorf("no virtual service at %s, verdict %v", to, r.GetVerdict())
		}
		return
	}
	vs := st.Services[i]
	var want, got []string
	for _, d := range vs.Dests {
		want = append(want, d.DestKey.String())
	}
	for _, e := range r.GetEndpoints() {
		if e.GetSelected() {
			got = append(got, e.GetAddress())
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("selected endpoints are not the model's real servers (-model +trace):\n%s", diff)
	}
	table := nft.Build(st, podCIDRs)
	src := netip.MustParseAddr(r.GetSource().GetIp())
	dropped := table.Drops(to, src)
	switch {
	case dropped != (r.GetVerdict() == drop):
		t.Errorf("table drops: %v, verdict %v", dropped, r.GetVerdict())
	case !dropped && (len(vs.Dests) == 0) != (r.GetVerdict() == reject):
		t.Errorf("%d real servers, verdict %v", len(vs.Dests), r.GetVerdict())
	}
	for _, e := range r.GetEndpoints() {
		if !e.GetSelected() || r.GetVerdict() != forward {
			continue
		}
		masq, _ := table.Masquerades(to, src, netip.MustParseAddrPort(e.GetAddress()).Addr())
		if masq != e.GetMasquerade() {
			t.Errorf("%s: table masquerades %v, trace says %v", e.GetAddress(), masq, e.GetMasquerade())
		}
	}
}
