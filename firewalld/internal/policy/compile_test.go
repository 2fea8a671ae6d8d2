package policy

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func mixedPolicies() []*networkingv1.NetworkPolicy {
	return []*networkingv1.NetworkPolicy{
		pol("x", "web", sel(), ingress(peers(nsPeer(sel())), namedPort(TCP, "web"))),
		pol("x", "out", sel("pod", "a"), types(egressType), egress(peers(nsPodPeer(sel("ns", "y"), sel("pod", "b")), blockPeer("198.18.0.0/24", "198.18.0.1/32")), port(UDP, 53))),
		pol("y", "deny", sel()),
		pol("y", "from-world", sel("pod", "b"), ingress(peers(blockPeer("0.0.0.0/0", "198.18.128.0/17")), portRange(TCP, 8000, 8080))),
	}
}

func TestCompileIsDeterministic(t *testing.T) {
	in := newCluster().with(mixedPolicies()...).in
	first := Compile(in)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := in
		shuffled.Pods = slices.Clone(in.Pods)
		shuffled.Policies = slices.Clone(in.Policies)
		shuffled.Namespaces = slices.Clone(in.Namespaces)
		r.Shuffle(len(shuffled.Pods), func(i, j int) { shuffled.Pods[i], shuffled.Pods[j] = shuffled.Pods[j], shuffled.Pods[i] })
		r.Shuffle(len(shuffled.Policies), func(i, j int) {
			shuffled.Policies[i], shuffled.Policies[j] = shuffled.Policies[j], shuffled.Policies[i]
		})
		r.Shuffle(len(shuffled.Namespaces), func(i, j int) {
			shuffled.Namespaces[i], shuffled.Namespaces[j] = shuffled.Namespaces[j], shuffled.Namespaces[i]
		})
		again := Compile(shuffled)
		if !reflect.DeepEqual(first.Datapath, again.Datapath) {
			t.Fatal("the same objects in another order compile to another datapath: a restart would rewrite the table")
		}
		if !reflect.DeepEqual(first.Groups, again.Groups) {
			t.Fatalf("groups differ: %v vs %v", first.Groups, again.Groups)
		}
	}
}

func TestNamespaceRelabelChangesPeerSetsOnly(t *testing.T) {
	c := newCluster().with(pol("x", "from-blue", sel("pod", "a"), ingress(peers(nsPeer(sel("color", "blue"))))))
	cp := NewCompiler()
	before := cp.Compile(c.in).Datapath.Clone()
	checkProbes(t, before, []probe{"y/b -> x/a tcp/80 no"})
	c.in.Namespaces = slices.Clone(c.in.Namespaces)
	c.in.Namespaces[1] = testNamespace("y", map[string]string{"color": "blue"})
	res := cp.Compile(c.in)
	checkProbes(t, res.Datapath, []probe{"y/b -> x/a tcp/80 ok", "z/b -> x/a tcp/80 no"})
	if !reflect.DeepEqual(before.Chains, res.Datapath.Chains) || res.Delta.Chains.Len() != 0 {
		t.Error("relabelling a namespace rewrote chains: only the peer set's addresses should change")
	}
	if got := res.Delta.PeerElems.Len(); got != 3 {
		t.Errorf("peer set changes: %d, want y's three pods", got)
	}
}

func TestPodRelabelFollowsSelection(t *testing.T) {
	c := newCluster().with(pol("x", "to-a", sel("pod", "a")))
	checkProbes(t, Compile(c.in).Datapath, []probe{"y/a -> x/a tcp/80 no", "y/a -> x/b tcp/80 ok"})
	c.in.Pods[0].Labels = map[string]string{"pod": "other"}
	c.in.Pods[1].Labels = map[string]string{"pod": "a"}
	checkProbes(t, Compile(c.in).Datapath, []probe{"y/a -> x/a tcp/80 ok", "y/a -> x/b tcp/80 no"})
}

func TestPodsThatAreNotPoliced(t *testing.T) {
	c := newCluster().with(pol("x", "deny", sel()))
	host := testPod("x", "host")
	host.Spec.HostNetwork = true
	host.Status.PodIPs = []corev1.PodIP{{IP: "198.18.0.10"}}
	done := testPod("x", "done")
	done.Status.Phase = corev1.PodSucceeded
	done.Status.PodIPs = []corev1.PodIP{{IP: "198.18.128.50"}}
	noIP := testPod("x", "new")
	noIP.Status.PodIPs, noIP.Status.PodIP = nil, ""
	c.in.Pods = append(c.in.Pods, host, done, noIP)
	res := Compile(c.in)
	dp := res.Datapath
	if _, ok := dp.IngressGroup[netip.MustParseAddr("198.18.0.10")]; ok {
		t.Error("a host-network pod is policed: it would police the node's own address")
	}
	for e := range dp.PeerElems {
		if e.From == netip.MustParseAddr("198.18.0.10") {
			t.Error("a host-network pod is in a peer set: selecting it would match the node")
		}
	}
	checkProbes(t, dp, []probe{"world -> 198.18.128.50 tcp/80 no"}) // its address is pending again, not x's
	if res.Stats.SelectedPods != 2 {
		t.Errorf("selected pods: %d, want x/a and x/b", res.Stats.SelectedPods)
	}
}

func TestReusedAddressGoesToTheLivePod(t *testing.T) {
	c := newCluster().with(pol("x", "deny", sel()))
	old := testPod("y", "old")
	old.Status.PodIPs = []corev1.PodIP{{IP: podIP("x", "a").String()}}
	now := metav1.Now()
	old.DeletionTimestamp = &now
	c.in.Pods = append([]*corev1.Pod{old}, c.in.Pods...)
	res := Compile(c.in)
	checkProbes(t, res.Datapath, []probe{"y/b -> x/a tcp/80 no"})
}

func TestProblemsAreReported(t *testing.T) {
	bad := testPod("z", "bad")
	bad.Status.PodIPs = []corev1.PodIP{{IP: "198.18.128.300"}}
	c := newCluster().with(
		pol("x", "selector", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "pod", Operator: "Sideways"}}}),
		pol("x", "cidr", sel(), ingress(peers(blockPeer("198.18.0.0/33")))),
		pol("x", "port", sel(), ingress(nil, portRange(TCP, 90, 80))),
		pol("x", "type", sel(), types("Sideways")),
	)
	c.in.Pods = append(c.in.Pods, bad)
	res := Compile(c.in)
	var got []string
	for _, p := range res.Problems {
		got = append(got, p.Kind+" "+p.Namespace+"/"+p.Name+" "+p.Reason)
	}
	slices.Sort(got)
	want := []string{
		"NetworkPolicy x/cidr InvalidPeer", "NetworkPolicy x/port InvalidPort", "NetworkPolicy x/selector InvalidSelector",
		"NetworkPolicy x/type InvalidPolicyType", "Pod z/bad InvalidPodIP",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The invalid selector selects nothing; the rest still isolate x.
	checkProbes(t, res.Datapath, []probe{"world -> x/a tcp/80 no", "world -> y/a tcp/80 ok"})
}

func TestDualStack(t *testing.T) {
	c := newCluster().with(pol("x", "v6", sel("pod", "a"), ingress(peers(blockPeer("2001:db8:1::/64"), podPeer(sel("pod", "b"))))))
	c.in.PodCIDRs = append(c.in.PodCIDRs, netip.MustParsePrefix("2001:db8:80::/64"))
	for _, p := range c.in.Pods {
		if p.Namespace == "x" && p.Name != "c" {
			p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: "2001:db8:80::" + p.Name})
		}
	}
	res := Compile(c.in)
	checkProbes(t, res.Datapath, []probe{
		"2001:db8:1::5 -> 2001:db8:80::a tcp/80 ok", "2001:db8:2::5 -> 2001:db8:80::a tcp/80 no",
		"2001:db8:80::b -> 2001:db8:80::a tcp/80 ok", "2001:db8:80::99 -> 2001:db8:80::a tcp/80 no",
		"x/b -> x/a tcp/80 ok", "world -> x/a tcp/80 no",
	})
}

func TestIdentitiesAreShared(t *testing.T) {
	c := newCluster()
	for i := range 3 {
		p := testPod("y", "a")
		p.Name = "replica-" + string(rune('0'+i))
		p.Status.PodIPs = []corev1.PodIP{{IP: netip.AddrFrom4([4]byte{198, 18, 130, byte(i + 1)}).String()}}
		c.in.Pods = append(c.in.Pods, p)
	}
	res := Compile(c.in)
	if want := 9; res.Stats.Identities != want {
		t.Errorf("identities: %d, want %d (replicas with the same labels and ports share one)", res.Stats.Identities, want)
	}
}

// TestElementsNeverOverlap checks, over random policies, the invariants
// the kernel's sets need: no two elements of a peer set overlap, and the
// port ranges of one peer in one chain are disjoint.
func TestElementsNeverOverlap(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 200 {
		c := newCluster().with(randomPolicies(r)...)
		dp := Compile(c.in).Datapath
		for k, rules := range dp.Chains {
			byPeer := map[model.ID][]model.PortRange{}
			for _, ru := range rules {
				byPeer[ru.Peer] = append(byPeer[ru.Peer], ru.Ports)
			}
			for p, rs := range byPeer {
				if overlapping(rs) {
					t.Fatalf("run %d: chain %v: ranges of peer %v overlap: %v", i, k, p, rs)
				}
			}
		}
		byPeer := map[model.ID][]model.PeerElem{}
		for e := range dp.PeerElems {
			byPeer[e.Peer] = append(byPeer[e.Peer], e)
		}
		for p, es := range byPeer {
			slices.SortFunc(es, model.PeerElem.Compare)
			for j := 1; j < len(es); j++ {
				if es[j-1].From.BitLen() == es[j].From.BitLen() && es[j-1].To.Compare(es[j].From) >= 0 {
					t.Fatalf("run %d: peer %v: elements overlap: %v %v", i, p, es[j-1], es[j])
				}
			}
		}
		used := dp.Peers()
		for p := range byPeer {
			if _, ok := used[p]; !ok {
				t.Fatalf("run %d: peer set %v has elements but no rule names it", i, p)
			}
		}
	}
}

func overlapping(rs []model.PortRange) bool {
	for i := range rs {
		for j := i + 1; j < len(rs); j++ {
			a, b := rs[i], rs[j]
			if a.ProtoFrom <= b.ProtoTo && b.ProtoFrom <= a.ProtoTo && a.PortFrom <= b.PortTo && b.PortFrom <= a.PortTo {
				return true
			}
		}
	}
	return false
}

func randomPolicies(r *rand.Rand) []*networkingv1.NetworkPolicy {
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	randPeer := func() networkingv1.NetworkPolicyPeer {
		switch r.IntN(5) {
		case 0:
			return podPeer(sel("pod", pick("a", "b", "c")))
		case 1:
			return nsPeer(sel("ns", pick("x", "y", "z")))
		case 2:
			return nsPodPeer(sel(), sel("pod", pick("a", "b")))
		case 3:
			return blockPeer(pick("198.18.0.0/16", "198.18.128.0/24", "0.0.0.0/0"), pick("198.18.128.0/25", "198.18.0.0/24"))
		}
		return blockPeer(pick("198.18.128.10/32", "198.18.0.0/15"))
	}
	randPorts := func() []networkingv1.NetworkPolicyPort {
		var out []networkingv1.NetworkPolicyPort
		for range r.IntN(3) {
			switch r.IntN(4) {
			case 0:
				out = append(out, port(TCP, 80+r.IntN(3)))
			case 1:
				out = append(out, portRange(UDP, 79+r.IntN(3), 81+r.IntN(3)))
			case 2:
				out = append(out, namedPort(TCP, pick("web", "serve-81-tcp", "nope")))
			default:
				out = append(out, protoOnly(SCTP))
			}
		}
		return out
	}
	var ps []*networkingv1.NetworkPolicy
	for i := range 1 + r.IntN(5) {
		var mods []func(*networkingv1.NetworkPolicy)
		for range r.IntN(3) {
			var pe []networkingv1.NetworkPolicyPeer
			for range r.IntN(3) {
				pe = append(pe, randPeer())
			}
			if r.IntN(2) == 0 {
				mods = append(mods, ingress(pe, randPorts()...))
			} else {
				mods = append(mods, egress(pe, randPorts()...))
			}
		}
		ps = append(ps, pol(pick("x", "y"), "p"+string(rune('0'+i)), sel("pod", pick("a", "b")), mods...))
	}
	return ps
}
