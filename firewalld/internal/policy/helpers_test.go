package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The test cluster: namespaces x, y, z (labels ns=<name>), pods a, b, c in
// each (labels pod=<name>). a and b run on this node (n0, pod CIDR
// 198.18.128.0/24), c on n1 (198.18.129.0/24). Every pod serves named
// ports serve-80-tcp, serve-81-tcp, serve-80-udp, serve-81-udp,
// serve-80-sctp; "web" is 80/TCP on a and c, 81/TCP on b. World is an
// address outside the cluster.
const thisNode = "n0"

var (
	nodeCIDR = netip.MustParsePrefix("198.18.128.0/24")
	world    = netip.MustParseAddr("198.18.0.1")
	world2   = netip.MustParseAddr("198.18.0.2")
	unknown  = netip.MustParseAddr("198.18.128.99") // in the node's CIDR, no pod
)

func podIP(ns, name string) netip.Addr {
	nsi := strings.Index("xyz", ns)
	switch name {
	case "a":
		return netip.AddrFrom4([4]byte{198, 18, 128, byte(10 + 10*nsi)})
	case "b":
		return netip.AddrFrom4([4]byte{198, 18, 128, byte(11 + 10*nsi)})
	}
	return netip.AddrFrom4([4]byte{198, 18, 129, byte(10 + 10*nsi)})
}

func testNamespace(name string, labels map[string]string) *corev1.Namespace {
	l := map[string]string{"ns": name, "kubernetes.io/metadata.name": name}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func testPod(ns, name string) *corev1.Pod {
	node := thisNode
	if name == "c" {
		node = "n1"
	}
	web := int32(80)
	if name == "b" {
		web = 81
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"pod": name}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "serve", Ports: []corev1.ContainerPort{
			{Name: "serve-80-tcp", ContainerPort: 80},
			{Name: "serve-81-tcp", ContainerPort: 81, Protocol: corev1.ProtocolTCP},
			{Name: "serve-80-udp", ContainerPort: 80, Protocol: corev1.ProtocolUDP},
			{Name: "serve-81-udp", ContainerPort: 81, Protocol: corev1.ProtocolUDP},
			{Name: "serve-80-sctp", ContainerPort: 80, Protocol: corev1.ProtocolSCTP},
			{Name: "web", ContainerPort: web},
		}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: podIP(ns, name).String(), PodIPs: []corev1.PodIP{{IP: podIP(ns, name).String()}}},
	}
}

// cluster is the input of one case.
type cluster struct{ in Input }

func newCluster() *cluster {
	c := &cluster{in: Input{Node: thisNode, PodCIDRs: []netip.Prefix{nodeCIDR}}}
	for _, ns := range []string{"x", "y", "z"} {
		c.in.Namespaces = append(c.in.Namespaces, testNamespace(ns, nil))
		for _, p := range []string{"a", "b", "c"} {
			c.in.Pods = append(c.in.Pods, testPod(ns, p))
		}
	}
	return c
}

func (c *cluster) with(ps ...*networkingv1.NetworkPolicy) *cluster {
	c.in.Policies = append(c.in.Policies, ps...)
	return c
}

// addr resolves "x/a" to the pod's address, "world"/"world2"/"unknown" to
// those addresses, anything else as an address.
func addr(t *testing.T, s string) netip.Addr {
	t.Helper()
	switch s {
	case "world":
		return world
	case "world2":
		return world2
	case "unknown":
		return unknown
	}
	if ns, name, ok := strings.Cut(s, "/"); ok {
		return podIP(ns, name)
	}
	return netip.MustParseAddr(s)
}

// probe is one connection attempt: "x/b -> x/a tcp/80 ok" or "... no".
type probe string

func (p probe) parse(t *testing.T) (src, dst netip.Addr, proto uint8, port uint16, want bool) {
	t.Helper()
	f := strings.Fields(string(p))
	if len(f) != 5 || f[1] != "->" {
		t.Fatalf("bad probe %q", p)
	}
	pr, portS, _ := strings.Cut(f[3], "/")
	var n int
	if _, err := fmt.Sscan(portS, &n); err != nil {
		t.Fatalf("bad port in %q", p)
	}
	proto = map[string]uint8{"tcp": model.ProtoTCP, "udp": model.ProtoUDP, "sctp": model.ProtoSCTP, "icmp": 1}[pr]
	return addr(t, f[0]), addr(t, f[2]), proto, uint16(n), f[4] == "ok"
}

func checkProbes(t *testing.T, dp *model.Datapath, probes []probe) {
	t.Helper()
	for _, p := range probes {
		src, dst, proto, port, want := p.parse(t)
		v := dp.Judge(src, dst, proto, port)
		if (v == model.Allowed) != want {
			t.Errorf("%s: got %s", p, v)
		}
	}
}

// Policy builders.

func sel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func pol(ns, name string, podSelector *metav1.LabelSelector, mods ...func(*networkingv1.NetworkPolicy)) *networkingv1.NetworkPolicy {
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: networkingv1.NetworkPolicySpec{PodSelector: *podSelector}}
	for _, m := range mods {
		m(np)
	}
	return np
}

func types(ts ...networkingv1.PolicyType) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) { np.Spec.PolicyTypes = ts }
}

const (
	ingressType = networkingv1.PolicyTypeIngress
	egressType  = networkingv1.PolicyTypeEgress
)

func ingress(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: peers, Ports: ports})
	}
}

func egress(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicy) {
	return func(np *networkingv1.NetworkPolicy) {
		np.Spec.Egress = append(np.Spec.Egress, networkingv1.NetworkPolicyEgressRule{To: peers, Ports: ports})
	}
}

func peers(ps ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return ps }

func podPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func nsPodPeer(ns, pod *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pod}
}

func blockPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func port(proto corev1.Protocol, p int) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(int32(p))
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

func portRange(proto corev1.Protocol, from, to int) networkingv1.NetworkPolicyPort {
	pp := port(proto, from)
	end := int32(to)
	pp.EndPort = &end
	return pp
}

func namedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	v := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

func protoOnly(proto corev1.Protocol) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &proto}
}

const (
	TCP  = corev1.ProtocolTCP
	UDP  = corev1.ProtocolUDP
	SCTP = corev1.ProtocolSCTP
)
