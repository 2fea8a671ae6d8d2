package desired

// Builders for Services and EndpointSlices, a one-line rendering of the
// desired state, the invariants every result must keep, and the table
// runner the topic files share.
//
// Addresses: IPv4 services 198.19.x.x, pods 198.18.128+.x, nodes 198.18.0.x;
// IPv6 services 2001:db8:19::/48, pods 2001:db8:18:128::/64, nodes
// 2001:db8:18::/64. Nothing here is sent anywhere.

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

const (
	testNS   = "ns"
	thisNode = "node-a"
	peerNode = "node-b"
	thisZone = "zone-a"
	peerZone = "zone-b"

	nodeV4 = "198.18.0.1"
	nodeV6 = "2001:db8:18::1"
)

// v4Node is the node most cases run on: one IPv4 address, zone-a.
func v4Node() Node {
	return Node{Name: thisNode, Zone: thisZone, IPs: []netip.Addr{netip.MustParseAddr(nodeV4)}}
}

// dualNode has an IPv4 and an IPv6 address.
func dualNode() Node {
	n := v4Node()
	n.IPs = append(n.IPs, netip.MustParseAddr(nodeV6))
	return n
}

// ---- Services ----

type svcMod func(*corev1.Service)

// service builds a ClusterIP Service in namespace testNS. Without a
// clusterIPs modifier it has no ClusterIP at all.
func service(name string, mods ...svcMod) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

// clusterIPs sets spec.clusterIP, spec.clusterIPs and spec.ipFamilies the way
// the API server does.
func clusterIPs(ips ...string) svcMod {
	return func(s *corev1.Service) {
		s.Spec.ClusterIP = ips[0]
		s.Spec.ClusterIPs = ips
		s.Spec.IPFamilies = nil
		for _, ip := range ips {
			if a, err := netip.ParseAddr(ip); err == nil {
				s.Spec.IPFamilies = append(s.Spec.IPFamilies, map[bool]corev1.IPFamily{true: corev1.IPv4Protocol, false: corev1.IPv6Protocol}[a.Is4()])
			}
		}
		if len(ips) > 1 {
			p := corev1.IPFamilyPolicyPreferDualStack
			s.Spec.IPFamilyPolicy = &p
		}
	}
}

func headless() svcMod {
	return func(s *corev1.Service) {
		s.Spec.ClusterIP = corev1.ClusterIPNone
		s.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
	}
}

func svcType(t corev1.ServiceType) svcMod { return func(s *corev1.Service) { s.Spec.Type = t } }

func ports(ps ...corev1.ServicePort) svcMod {
	return func(s *corev1.Service) { s.Spec.Ports = append(s.Spec.Ports, ps...) }
}

// sp is a Service port; nodePort 0 means none.
func sp(name string, proto corev1.Protocol, port, nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Protocol: proto, Port: port, NodePort: nodePort}
}

func externalIPs(ips ...string) svcMod {
	return func(s *corev1.Service) { s.Spec.ExternalIPs = ips }
}

// ingress adds status.loadBalancer.ingress entries.
func ingress(ings ...corev1.LoadBalancerIngress) svcMod {
	return func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, ings...)
	}
}

func ingIP(ip string) corev1.LoadBalancerIngress { return corev1.LoadBalancerIngress{IP: ip} }

func ingMode(ip string, mode corev1.LoadBalancerIPMode) corev1.LoadBalancerIngress {
	return corev1.LoadBalancerIngress{IP: ip, IPMode: &mode}
}

func ingHost(h string) corev1.LoadBalancerIngress { return corev1.LoadBalancerIngress{Hostname: h} }

func etpLocal() svcMod {
	return func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }
}

func etpCluster() svcMod {
	return func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster }
}

func itp(p corev1.ServiceInternalTrafficPolicy) svcMod {
	return func(s *corev1.Service) { s.Spec.InternalTrafficPolicy = &p }
}

func healthCheckNodePort(p int32) svcMod {
	return func(s *corev1.Service) { s.Spec.HealthCheckNodePort = p }
}

func noLBNodePorts() svcMod {
	return func(s *corev1.Service) { s.Spec.AllocateLoadBalancerNodePorts = ptr(false) }
}

func annotate(k, v string) svcMod {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func trafficDistribution(v string) svcMod {
	return func(s *corev1.Service) { s.Spec.TrafficDistribution = &v }
}

// clientIPAffinity sets sessionAffinity ClientIP; timeout nil leaves the
// config out.
func clientIPAffinity(timeout *int32) svcMod {
	return func(s *corev1.Service) {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		if timeout != nil {
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: timeout}}
		}
	}
}

func lbSourceRanges(r ...string) svcMod {
	return func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = r }
}

// loadBalancer makes a LoadBalancer Service with one TCP port 80 (nodePort
// 30080) on ClusterIP 198.19.0.10 and ingress IP 198.19.2.10.
func loadBalancer(name string, mods ...svcMod) *corev1.Service {
	return service(name, append([]svcMod{
		svcType(corev1.ServiceTypeLoadBalancer), clusterIPs("198.19.0.10"),
		ports(sp("http", corev1.ProtocolTCP, 80, 30080)), ingress(ingIP("198.19.2.10")),
	}, mods...)...)
}

// ---- EndpointSlices ----

// slice builds an EndpointSlice of Service svc (label
// kubernetes.io/service-name, the runner groups by it).
func slice(svc, name string, fam discoveryv1.AddressType, ps []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io",
		}},
		AddressType: fam,
		Ports:       ps,
		Endpoints:   eps,
	}
}

// v4Slice / v6Slice: one slice of that family with ports ps.
func v4Slice(svc, name string, ps []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return slice(svc, name, discoveryv1.AddressTypeIPv4, ps, eps...)
}

func v6Slice(svc, name string, ps []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return slice(svc, name, discoveryv1.AddressTypeIPv6, ps, eps...)
}

func eps(ps ...discoveryv1.EndpointPort) []discoveryv1.EndpointPort { return ps }

// epp is an EndpointSlice port with every field set.
func epp(name string, proto corev1.Protocol, port int32) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Protocol: &proto, Port: &port}
}

type epMod func(*discoveryv1.Endpoint)

// ep is an endpoint on peerNode with all conditions left nil (the API's
// "unknown", which means ready and serving and not terminating).
func ep(addr string, mods ...epMod) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{addr}, NodeName: ptr(peerNode)}
	for _, m := range mods {
		m(&e)
	}
	return e
}

func local() epMod          { return func(e *discoveryv1.Endpoint) { e.NodeName = ptr(thisNode) } }
func onNode(n string) epMod { return func(e *discoveryv1.Endpoint) { e.NodeName = &n } }
func noNode() epMod         { return func(e *discoveryv1.Endpoint) { e.NodeName = nil } }
func ready(b bool) epMod    { return func(e *discoveryv1.Endpoint) { e.Conditions.Ready = &b } }
func serving(b bool) epMod  { return func(e *discoveryv1.Endpoint) { e.Conditions.Serving = &b } }
func terminating(b bool) epMod {
	return func(e *discoveryv1.Endpoint) { e.Conditions.Terminating = &b }
}

// servingTerminating is what the EndpointSlice controller publishes for a
// Pod that is shutting down but still passes its readiness probe.
func servingTerminating() epMod {
	return func(e *discoveryv1.Endpoint) {
		e.Conditions = discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}
	}
}

// notServingTerminating: shutting down and failing its probe.
func notServingTerminating() epMod {
	return func(e *discoveryv1.Endpoint) {
		e.Conditions = discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(false), Terminating: ptr(true)}
	}
}

func notReady() epMod {
	return func(e *discoveryv1.Endpoint) {
		e.Conditions = discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(false), Terminating: ptr(false)}
	}
}

func moreAddrs(a ...string) epMod {
	return func(e *discoveryv1.Endpoint) { e.Addresses = append(e.Addresses, a...) }
}

func forZones(z ...string) epMod {
	return func(e *discoveryv1.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discoveryv1.EndpointHints{}
		}
		for _, n := range z {
			e.Hints.ForZones = append(e.Hints.ForZones, discoveryv1.ForZone{Name: n})
		}
	}
}

func forNodes(n ...string) epMod {
	return func(e *discoveryv1.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discoveryv1.EndpointHints{}
		}
		for _, x := range n {
			e.Hints.ForNodes = append(e.Hints.ForNodes, discoveryv1.ForNode{Name: x})
		}
	}
}

func ptr[T any](v T) *T { return &v }

// ---- rendering ----

// render writes each virtual service on one line, every field of it:
//
//	<addr:port/proto> <Kind> <ns/name>[:<port name>] <scheduler> [persist=N]
//	    [extLocal] [localEps] [restricted=<ranges,...>] -> <dest>[*][@weight] ...
//
// "*" marks a local real server, "@w" a weight other than 1, "-> none" a
// virtual service without real servers.
func render(st model.State) []string {
	var out []string
	for _, vs := range st.Services {
		out = append(out, renderVS(vs))
	}
	return out
}

func renderVS(vs *model.VirtualService) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", vs.VSKey, vs.Kind, vs.Service)
	if vs.PortName != "" {
		b.WriteString(":" + vs.PortName)
	}
	b.WriteString(" " + vs.Scheduler)
	if vs.PersistenceTimeout != 0 {
		fmt.Fprintf(&b, " persist=%d", vs.PersistenceTimeout)
	}
	if vs.ExternalLocal {
		b.WriteString(" extLocal")
	}
	if vs.LocalEndpoints {
		b.WriteString(" localEps")
	}
	if vs.SourceRestricted {
		var rs []string
		for _, p := range vs.SourceRanges {
			rs = append(rs, p.String())
		}
		b.WriteString(" restricted=" + strings.Join(rs, ","))
	} else if len(vs.SourceRanges) > 0 {
		fmt.Fprintf(&b, " UNRESTRICTED-RANGES=%v", vs.SourceRanges)
	}
	b.WriteString(" ->")
	if len(vs.Dests) == 0 {
		b.WriteString(" none")
	}
	for _, d := range vs.Dests {
		b.WriteString(" " + d.DestKey.String())
		if d.Local {
			b.WriteString("*")
		}
		if d.Weight != 1 {
			fmt.Fprintf(&b, "@%d", d.Weight)
		}
	}
	return b.String()
}

func renderHC(st model.State) []string {
	var out []string
	for _, h := range st.HealthChecks {
		out = append(out, fmt.Sprintf("%s :%d local=%d", h.Service, h.Port, h.LocalEndpoints))
	}
	return out
}

// problemKeys renders problems as "Kind ns/name Reason".
func problemKeys(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s %s %s", p.Kind, p.Object, p.Reason))
	}
	return out
}

// ---- invariants ----

// checkInvariants asserts what must hold of any result, whatever the input.
func checkInvariants(t testing.TB, st model.State, problems []Problem) {
	t.Helper()
	for i, vs := range st.Services {
		if vs == nil {
			t.Fatalf("Services[%d] is nil", i)
		}
		if i > 0 && st.Services[i-1].VSKey.Compare(vs.VSKey) >= 0 {
			t.Errorf("Services not strictly sorted by key: %s then %s", st.Services[i-1].VSKey, vs.VSKey)
		}
		if !vs.Addr.IsValid() || vs.Addr.Zone() != "" || vs.Addr.Is4In6() || vs.Addr.IsUnspecified() {
			t.Errorf("%s: VIP is not a plain address", vs.VSKey)
		}
		if vs.Port == 0 {
			t.Errorf("%s: port 0", vs.VSKey)
		}
		if vs.Proto < model.TCP || vs.Proto > model.SCTP {
			t.Errorf("%s: protocol %v", vs.VSKey, vs.Proto)
		}
		if vs.Kind < model.ClusterIP || vs.Kind > model.NodePort {
			t.Errorf("%s: kind %v", vs.VSKey, vs.Kind)
		}
		if !ValidScheduler(vs.Scheduler) {
			t.Errorf("%s: scheduler %q", vs.VSKey, vs.Scheduler)
		}
		if vs.ExternalLocal && !vs.Kind.External() {
			t.Errorf("%s: ExternalLocal on a %s VIP", vs.VSKey, vs.Kind)
		}
		if (vs.SourceRestricted || len(vs.SourceRanges) > 0) && vs.Kind != model.LoadBalancer {
			t.Errorf("%s: source ranges on a %s VIP", vs.VSKey, vs.Kind)
		}
		if vs.Service.Name == "" {
			t.Errorf("%s: no Service", vs.VSKey)
		}
		for j, d := range vs.Dests {
			if d.Addr.Is4() != vs.Addr.Is4() || !d.Addr.IsValid() || d.Addr.Is4In6() || d.Addr.Zone() != "" {
				t.Errorf("%s: real server %s is not of the VIP's family", vs.VSKey, d.DestKey)
			}
			if d.Port == 0 {
				t.Errorf("%s: real server %s has port 0", vs.VSKey, d.DestKey)
			}
			if d.Weight != 1 {
				t.Errorf("%s: real server %s weight %d", vs.VSKey, d.DestKey, d.Weight)
			}
			if j > 0 && vs.Dests[j-1].DestKey.Compare(d.DestKey) >= 0 {
				t.Errorf("%s: real servers not strictly sorted: %s then %s", vs.VSKey, vs.Dests[j-1].DestKey, d.DestKey)
			}
		}
	}
	for i, h := range st.HealthChecks {
		if h.Port == 0 || h.LocalEndpoints < 0 {
			t.Errorf("health check %+v", h)
		}
		if i > 0 && st.HealthChecks[i-1].Port >= h.Port {
			t.Errorf("health checks not strictly sorted by port: %d then %d", st.HealthChecks[i-1].Port, h.Port)
		}
	}
	for _, p := range problems {
		if p.Kind != "Service" && p.Kind != "EndpointSlice" {
			t.Errorf("problem with kind %q: %+v", p.Kind, p)
		}
		if p.Reason == "" || p.Message == "" || p.Object.Name == "" {
			t.Errorf("incomplete problem %+v", p)
		}
	}
}

// ---- the runner ----

// groupSlices indexes slices by their Service the way proxyd's informer
// does (label kubernetes.io/service-name, same namespace).
func groupSlices(sls []*discoveryv1.EndpointSlice) map[types.NamespacedName][]*discoveryv1.EndpointSlice {
	m := map[types.NamespacedName][]*discoveryv1.EndpointSlice{}
	for _, sl := range sls {
		k := types.NamespacedName{Namespace: sl.Namespace, Name: sl.Labels[discoveryv1.LabelServiceName]}
		m[k] = append(m[k], sl)
	}
	return m
}

// deepCopyInput copies everything Compute may read.
func deepCopyInput(in Input) Input {
	out := Input{Node: in.Node, Slices: map[types.NamespacedName][]*discoveryv1.EndpointSlice{}}
	out.Node.IPs = slices.Clone(in.Node.IPs)
	for _, s := range in.Services {
		out.Services = append(out.Services, s.DeepCopy())
	}
	for k, sls := range in.Slices {
		for _, sl := range sls {
			out.Slices[k] = append(out.Slices[k], sl.DeepCopy())
		}
	}
	return out
}

// shuffled returns in with its Services, each Service's slices and the
// node's addresses in another order (same objects).
func shuffled(in Input, r *rand.Rand) Input {
	out := Input{Node: in.Node, Slices: map[types.NamespacedName][]*discoveryv1.EndpointSlice{}}
	out.Services = slices.Clone(in.Services)
	r.Shuffle(len(out.Services), func(i, j int) { out.Services[i], out.Services[j] = out.Services[j], out.Services[i] })
	out.Node.IPs = slices.Clone(in.Node.IPs)
	r.Shuffle(len(out.Node.IPs), func(i, j int) { out.Node.IPs[i], out.Node.IPs[j] = out.Node.IPs[j], out.Node.IPs[i] })
	for k, sls := range in.Slices {
		c := slices.Clone(sls)
		r.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] })
		out.Slices[k] = c
	}
	return out
}

// reportMutation fails t, naming the object, when in differs from before
// (a deep copy taken earlier).
func reportMutation(t testing.TB, before, in Input) {
	t.Helper()
	if !reflect.DeepEqual(before.Node, in.Node) {
		t.Errorf("Compute modified the node: %+v, was %+v", in.Node, before.Node)
	}
	if len(before.Services) != len(in.Services) {
		t.Errorf("Compute changed the Service list")
	}
	for i := range min(len(before.Services), len(in.Services)) {
		if !reflect.DeepEqual(before.Services[i], in.Services[i]) {
			t.Errorf("Compute modified Service %d (%s/%s):\n%s", i, before.Services[i].Namespace, before.Services[i].Name,
				cmp.Diff(before.Services[i], in.Services[i]))
		}
	}
	if len(before.Slices) != len(in.Slices) {
		t.Errorf("Compute changed the slice map")
	}
	for k, sls := range before.Slices {
		if !reflect.DeepEqual(sls, in.Slices[k]) {
			t.Errorf("Compute modified the slices of %s:\n%s", k, cmp.Diff(sls, in.Slices[k]))
		}
	}
}

// computeChecked runs Compute and asserts, besides the invariants, that it
// left its input alone and that the order of Services, slices and node
// addresses changes nothing (problems included).
func computeChecked(t testing.TB, in Input, cfg Config) (model.State, []Problem) {
	t.Helper()
	before := deepCopyInput(in)
	st, problems := Compute(in, cfg)
	checkInvariants(t, st, problems)
	reportMutation(t, before, in)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 4 {
		st2, problems2 := Compute(shuffled(in, r), cfg)
		if d := cmp.Diff(render(st), render(st2)); d != "" {
			t.Errorf("input order %d changed the state (-first +reordered):\n%s", i, d)
		}
		if d := cmp.Diff(renderHC(st), renderHC(st2)); d != "" {
			t.Errorf("input order %d changed the health checks (-first +reordered):\n%s", i, d)
		}
		if d := cmp.Diff(problems, problems2); d != "" {
			t.Errorf("input order %d changed the problems (-first +reordered):\n%s", i, d)
		}
	}
	return st, problems
}

// tcase is one row of a table: Services and slices on a node, and the whole
// expected outcome.
type tcase struct {
	name   string
	node   *Node // v4Node() when nil
	cfg    Config
	svcs   []*corev1.Service
	slices []*discoveryv1.EndpointSlice
	// want is render() of the state, in key order.
	want []string
	// wantHC is renderHC(); wantProblems problemKeys(), in order.
	wantHC       []string
	wantProblems []string
}

func (tc tcase) input() Input {
	n := v4Node()
	if tc.node != nil {
		n = *tc.node
	}
	return Input{Services: tc.svcs, Slices: groupSlices(tc.slices), Node: n}
}

func runTable(t *testing.T, cases []tcase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, problems := computeChecked(t, tc.input(), tc.cfg)
			if d := cmp.Diff(tc.want, render(st)); d != "" {
				t.Errorf("virtual services (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantHC, renderHC(st)); d != "" {
				t.Errorf("health checks (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.wantProblems, problemKeys(problems)); d != "" {
				t.Errorf("problems (-want +got):\n%s\nall: %+v", d, problems)
			}
		})
	}
}
