package desired

// Properties that hold for any input: FuzzCompute builds Services and
// EndpointSlices (good, odd and malformed) from the fuzzer's bytes; the
// purity and order tests run a rich fixed fixture.

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// gen draws choices from the fuzzer's bytes; past the end it draws zeros.
type gen struct {
	b []byte
	i int
}

func (g *gen) n(k int) int {
	if g.i >= len(g.b) {
		return 0
	}
	c := g.b[g.i]
	g.i++
	return int(c) % k
}

func pick[T any](g *gen, xs ...T) T { return xs[g.n(len(xs))] }

func (g *gen) optBool() *bool { return pick(g, nil, ptr(true), ptr(false)) }

func (g *gen) some(max int, f func()) {
	for range g.n(max + 1) {
		f()
	}
}

// Small pools so that Services collide, slices duplicate endpoints and
// every branch (good and bad) is reachable.
var (
	fzClusterIPs = [][]string{nil, {"198.19.0.1"}, {"198.19.0.2"}, {"2001:db8:19::1"}, {"198.19.0.1", "2001:db8:19::1"},
		{"2001:db8:19::2", "198.19.0.2"}, {"None"}, {"bogus"}, {"0.0.0.0"}, {"::ffff:198.19.0.3"}, {""}}
	fzExternal = []string{"198.19.1.1", "2001:db8:19:1::1", "198.19.0.1", "198.18.0.1", "x", "fe80::1%eth0", " 198.19.1.2 "}
	fzIngress  = []corev1.LoadBalancerIngress{ingIP("198.19.2.1"), ingIP("2001:db8:19:2::1"), ingMode("198.19.2.2", corev1.LoadBalancerIPModeProxy),
		ingMode("198.19.2.3", corev1.LoadBalancerIPModeVIP), ingHost("lb.example.test"), ingIP("bad"), {}}
	fzPortNames = []string{"", "http", "dns", "p"}
	fzProtos    = []corev1.Protocol{tcp, udp, sctp, "", "ICMP"}
	fzEPAddrs   = []string{"198.18.128.1", "198.18.128.2", "198.18.129.1", "2001:db8:18:128::1", "2001:db8:18:128::2",
		"::ffff:198.18.128.3", "bad", "", "fe80::1%eth0", "pod.example.test"}
	fzNodeIPs = []netip.Addr{netip.MustParseAddr(nodeV4), netip.MustParseAddr(nodeV6), netip.MustParseAddr("198.18.0.2"),
		netip.MustParseAddr("::ffff:198.18.0.1"), {}, netip.MustParseAddr("0.0.0.0")}
)

func (g *gen) service(i int) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: pick(g, "ns", "ns2"), Name: fmt.Sprintf("s%d", i)}}
	s.Spec.Type = pick(g, corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort, corev1.ServiceTypeLoadBalancer,
		corev1.ServiceTypeExternalName, "")
	if ips := pick(g, fzClusterIPs...); len(ips) > 0 {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = ips[0], slices.Clone(ips)
	}
	if g.n(2) == 0 {
		s.Spec.IPFamilies = pick(g, []corev1.IPFamily{corev1.IPv4Protocol}, []corev1.IPFamily{corev1.IPv6Protocol},
			[]corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol})
	}
	g.some(2, func() { s.Spec.ExternalIPs = append(s.Spec.ExternalIPs, pick(g, fzExternal...)) })
	g.some(2, func() { s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, pick(g, fzIngress...)) })
	g.some(3, func() {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{
			Name: pick(g, fzPortNames...), Protocol: pick(g, fzProtos...),
			Port: pick[int32](g, 80, 53, 443, 0, 70000, -1), NodePort: pick[int32](g, 0, 30080, 30053, 70000, -5),
		})
	})
	s.Spec.ExternalTrafficPolicy = pick(g, "", corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceExternalTrafficPolicyCluster)
	s.Spec.InternalTrafficPolicy = pick(g, nil, ptr(corev1.ServiceInternalTrafficPolicyLocal), ptr(corev1.ServiceInternalTrafficPolicyCluster))
	s.Spec.HealthCheckNodePort = pick[int32](g, 0, 32000, 32001, 70000, -1)
	if g.n(2) == 0 {
		s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		if t := pick(g, nil, ptr(int32(0)), ptr(int32(60)), ptr(int32(-1))); t != nil {
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: t}}
		}
	}
	s.Spec.TrafficDistribution = pick(g, nil, ptr(corev1.ServiceTrafficDistributionPreferClose),
		ptr(corev1.ServiceTrafficDistributionPreferSameZone), ptr(corev1.ServiceTrafficDistributionPreferSameNode), ptr("bogus"))
	s.Spec.LoadBalancerSourceRanges = pick(g, nil, []string{"198.18.0.0/16"}, []string{"bad", "2001:db8::/32"})
	switch g.n(5) {
	case 0:
		annotate(SchedulerAnnotation, pick(g, "rr", "sh", "MH", "bad", ""))(s)
	case 1:
		annotate(corev1.AnnotationTopologyMode, pick(g, "Auto", "auto", "Disabled"))(s)
	case 2:
		annotate(sourceRangesAnnotation, pick(g, "198.18.0.0/15", "198.18.0.0/15,bad", " "))(s)
	}
	return s
}

func (g *gen) slice(svc *corev1.Service, j int) *discoveryv1.EndpointSlice {
	sl := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: fmt.Sprintf("%s-%d", svc.Name, j),
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
		AddressType: pick(g, discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6, discoveryv1.AddressTypeFQDN, ""),
	}
	g.some(2, func() {
		sl.Ports = append(sl.Ports, discoveryv1.EndpointPort{
			Name: pick(g, nil, ptr(""), ptr("http"), ptr("dns"), ptr("p")), Protocol: pick(g, nil, ptr(tcp), ptr(udp), ptr(sctp)),
			Port: pick(g, ptr(int32(8080)), ptr(int32(53)), nil, ptr(int32(0)), ptr(int32(70000))),
		})
	})
	g.some(4, func() {
		e := discoveryv1.Endpoint{NodeName: pick(g, nil, ptr(thisNode), ptr(peerNode))}
		g.some(2, func() { e.Addresses = append(e.Addresses, pick(g, fzEPAddrs...)) })
		e.Conditions = discoveryv1.EndpointConditions{Ready: g.optBool(), Serving: g.optBool(), Terminating: g.optBool()}
		if g.n(2) == 0 {
			e.Hints = &discoveryv1.EndpointHints{}
			g.some(2, func() {
				e.Hints.ForZones = append(e.Hints.ForZones, discoveryv1.ForZone{Name: pick(g, thisZone, peerZone)})
			})
			g.some(1, func() {
				e.Hints.ForNodes = append(e.Hints.ForNodes, discoveryv1.ForNode{Name: pick(g, thisNode, peerNode)})
			})
		}
		sl.Endpoints = append(sl.Endpoints, e)
	})
	return sl
}

func (g *gen) input() Input {
	in := Input{Slices: map[types.NamespacedName][]*discoveryv1.EndpointSlice{}}
	in.Node = Node{Name: thisNode, Zone: pick(g, "", thisZone)}
	g.some(3, func() { in.Node.IPs = append(in.Node.IPs, pick(g, fzNodeIPs...)) })
	for i := range 1 + g.n(5) {
		s := g.service(i)
		in.Services = append(in.Services, s)
		k := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
		for j := range g.n(4) {
			in.Slices[k] = append(in.Slices[k], g.slice(s, j))
		}
	}
	return in
}

// checkAgainstInput asserts what ties the output to the input.
func checkAgainstInput(t testing.TB, in Input, st model.State, problems []Problem) {
	t.Helper()
	svcs := map[types.NamespacedName]*corev1.Service{}
	for _, s := range in.Services {
		svcs[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}] = s
	}
	nodeIPs := nodeAddrs(in.Node.IPs)
	for _, vs := range st.Services {
		s := svcs[vs.Service]
		if s == nil {
			t.Fatalf("%s: Service %s is not in the input", vs.VSKey, vs.Service)
		}
		if s.Spec.Type == corev1.ServiceTypeExternalName || s.Spec.ClusterIP == corev1.ClusterIPNone {
			t.Errorf("%s: %s Service %s is proxied", vs.VSKey, s.Spec.Type, vs.Service)
		}
		switch vs.Kind {
		case model.NodePort:
			if !slices.Contains(nodeIPs, vs.Addr) {
				t.Errorf("%s: NodePort VIP is not a node address", vs.VSKey)
			}
			if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.NodePort == int32(vs.Port) }) {
				t.Errorf("%s: not one of the Service's nodePorts", vs.VSKey)
			}
		case model.LoadBalancer:
			if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
				t.Errorf("%s: LoadBalancer VIP of a %s Service", vs.VSKey, s.Spec.Type)
			}
		}
		if vs.Kind != model.NodePort && !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == int32(vs.Port) }) {
			t.Errorf("%s: not one of the Service's ports", vs.VSKey)
		}
		if vs.ExternalLocal != (vs.Kind.External() && s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal) {
			t.Errorf("%s: ExternalLocal=%v", vs.VSKey, vs.ExternalLocal)
		}
		// With Local policy only local real servers; and a Service with a
		// local ready endpoint must say so.
		itpLocal := s.Spec.InternalTrafficPolicy != nil && *s.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
		if vs.ExternalLocal || (vs.Kind == model.ClusterIP && itpLocal) {
			for _, d := range vs.Dests {
				if !d.Local {
					t.Errorf("%s: remote real server %s under Local policy", vs.VSKey, d.DestKey)
				}
			}
		}
	}
	for _, h := range st.HealthChecks {
		s := svcs[h.Service]
		if s == nil || s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal ||
			int32(h.Port) != s.Spec.HealthCheckNodePort {
			t.Errorf("health check %+v does not follow from its Service", h)
		}
	}
	// Compute is Merge of the per-Service results in namespace/name order:
	// callers that cache ComputeService per Service get the same state.
	sorted := slices.Clone(in.Services)
	slices.SortFunc(sorted, func(a, b *corev1.Service) int {
		return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Name, b.Name))
	})
	var results []ServiceResult
	for _, s := range sorted {
		results = append(results, ComputeService(s, in.Slices[types.NamespacedName{Namespace: s.Namespace, Name: s.Name}], in.Node, Config{}))
	}
	st2, problems2 := Merge(results)
	if !reflect.DeepEqual(st, st2) || !reflect.DeepEqual(problems, problems2) {
		t.Errorf("Merge(ComputeService...) differs from Compute:\n%s\n%s", gocmp.Diff(render(st), render(st2)), gocmp.Diff(problems, problems2))
	}
}

func FuzzCompute(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x04\x00\x02\x04\x01\x02\x01\x01\x02\x00\x01\x02\x03\x01\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09"))
	f.Add([]byte("nodenet proxyd desired state: services, slices, node"))
	f.Add([]byte{2, 1, 3, 2, 0, 4, 1, 1, 0, 2, 1, 0, 1, 1, 0, 0, 1, 2, 1, 0, 0, 0, 3, 3, 0, 1, 2, 3, 3, 1, 2, 0, 0, 1, 2, 2, 1, 1, 1, 2, 0})
	for i := range 8 {
		r := rand.New(rand.NewPCG(uint64(i), 42))
		b := make([]byte, 64+i*32)
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{b: data}
		in := g.input()
		st, problems := computeChecked(t, in, Config{})
		checkAgainstInput(t, in, st, problems)
	})
}

// fixture is a bit of everything: dual-stack NodePort with Local policy,
// a restricted Local LoadBalancer, topology, duplicate endpoints across
// slices, conflicting Services, headless and ExternalName, bad input.
func fixture() Input {
	svcs := []*corev1.Service{
		webNP(clusterIPs("198.19.0.1", "2001:db8:19::1"), etpLocal(), externalIPs("198.19.1.1"),
			trafficDistribution(corev1.ServiceTrafficDistributionPreferClose), clientIPAffinity(nil)),
		loadBalancer("lb", etpLocal(), healthCheckNodePort(32000), lbSourceRanges("198.18.64.0/18", "bad"),
			ingress(ingMode("198.19.2.11", corev1.LoadBalancerIPModeProxy), ingIP("198.19.2.12")), annotate(SchedulerAnnotation, "sh")),
		service("dup", clusterIPs("198.19.0.1"), ports(sp("http", tcp, 80, 0), sp("dns", udp, 53, 0))),
		service("db", headless(), ports(sp("pg", tcp, 5432, 0))),
		service("ext", svcType(corev1.ServiceTypeExternalName)),
		service("itp", clusterIPs("198.19.0.5"), ports(sp("", tcp, 80, 0)), itp(corev1.ServiceInternalTrafficPolicyLocal)),
		service("bad", clusterIPs("198.19.0.x"), ports(sp("x", "ICMP", 1, 0))),
	}
	sls := []*discoveryv1.EndpointSlice{
		webSlice("web-a", ep("198.18.128.1", local(), forZones(thisZone)), ep("198.18.128.2", forZones(peerZone)), ep("198.18.128.x")),
		webSlice("web-b", ep("198.18.128.2", notReady()), ep("198.18.128.3", onNode("node-c"), forZones(thisZone))),
		webSlice6("web-c", ep("2001:db8:18:128::1", local()), ep("2001:db8:18:128::2", servingTerminating())),
		lbSlice(ep("198.18.128.10", local()), ep("198.18.128.11", servingTerminating(), local()), ep("198.18.128.12")),
		v4Slice("dup", "dup-1", eps(epp("http", tcp, 8080), epp("dns", udp, 53)), ep("198.18.128.20")),
		v4Slice("itp", "itp-1", eps(epp("", tcp, 8080)), ep("198.18.128.30", local()), ep("198.18.128.31")),
		v4Slice("itp", "itp-2", eps(epp("", tcp, 8080)), ep("198.18.128.30", local(), notReady())),
	}
	return Input{Services: svcs, Slices: groupSlices(sls), Node: dualNode()}
}

func TestComputeDoesNotMutateInput(t *testing.T) {
	in := fixture()
	before := deepCopyInput(in)
	st, _ := Compute(in, Config{})
	reportMutation(t, before, in)
	if len(st.Services) == 0 {
		t.Fatal("fixture produced nothing")
	}
	// Nor does the result alias the input: changing it leaves the input
	// and a second computation alone.
	want := render(st)
	for _, vs := range st.Services {
		vs.Dests = append(vs.Dests[:0], model.Dest{})
		vs.SourceRanges = append(vs.SourceRanges[:0], netip.Prefix{})
	}
	reportMutation(t, before, in)
	st2, _ := Compute(in, Config{})
	if d := gocmp.Diff(want, render(st2)); d != "" {
		t.Errorf("changing one result changed the next (-first +second):\n%s", d)
	}
}

func TestComputeIsOrderIndependent(t *testing.T) {
	in := fixture()
	st, problems := Compute(in, Config{})
	if len(problems) == 0 {
		t.Fatal("fixture has no problems to order")
	}
	r := rand.New(rand.NewPCG(7, 7))
	for i := range 100 {
		st2, problems2 := Compute(shuffled(in, r), Config{})
		if !reflect.DeepEqual(st, st2) {
			t.Fatalf("permutation %d: state differs:\n%s", i, gocmp.Diff(render(st), render(st2)))
		}
		if d := gocmp.Diff(problems, problems2); d != "" {
			t.Fatalf("permutation %d: problems differ:\n%s", i, d)
		}
	}
	// And the same input twice gives the same answer.
	st3, problems3 := Compute(in, Config{})
	if !reflect.DeepEqual(st, st3) || !reflect.DeepEqual(problems, problems3) {
		t.Error("two computations of one input differ")
	}
	checkInvariants(t, st, problems)
	checkAgainstInput(t, in, st, problems)
}
