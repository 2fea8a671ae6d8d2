package policy

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// The cases follow the NetworkPolicy API documentation (networking.k8s.io/v1)
// rule by rule. Every probe is judged by the compiled datapath exactly as
// the table's chains do (model.Datapath.Judge), on node n0: a and b of
// every namespace are its pods, c runs elsewhere and is policed there.
func TestSemantics(t *testing.T) {
	all := sel()
	for _, tc := range []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		probes   []probe
	}{
		{"no policy: everything is allowed", nil, []probe{
			"x/b -> x/a tcp/80 ok", "y/c -> x/a udp/81 ok", "world -> x/a tcp/9999 ok", "x/a -> world tcp/443 ok", "x/a -> x/a tcp/80 ok",
		}},
		{"default deny ingress isolates every pod of the namespace", []*networkingv1.NetworkPolicy{
			pol("x", "deny", all, types(ingressType)),
		}, []probe{
			"x/b -> x/a tcp/80 no", "y/a -> x/b udp/80 no", "world -> x/a tcp/80 no", "x/a -> x/b icmp/0 no",
			// Egress is not restricted, other namespaces are not selected.
			"x/a -> y/a tcp/80 ok", "x/a -> world tcp/80 ok", "y/a -> y/b tcp/80 ok",
		}},
		{"default deny egress", []*networkingv1.NetworkPolicy{
			pol("x", "deny", all, types(egressType)),
		}, []probe{
			"x/a -> y/a tcp/80 no", "x/a -> x/b tcp/80 no", "x/a -> world tcp/443 no", "x/b -> y/c udp/80 no",
			"y/a -> x/a tcp/80 ok", "world -> x/a tcp/80 ok",
		}},
		{"an empty rule allows everything", []*networkingv1.NetworkPolicy{
			pol("x", "deny", all, types(ingressType, egressType)),
			pol("x", "all-in", all, ingress(nil)),
			pol("x", "all-out", all, types(egressType), egress(nil)),
		}, []probe{
			"world -> x/a tcp/1 ok", "y/c -> x/b sctp/80 ok", "x/a -> world udp/53 ok", "x/a -> x/b icmp/0 ok",
		}},
		{"podSelector peer: pods of the policy's namespace", []*networkingv1.NetworkPolicy{
			pol("x", "from-b", sel("pod", "a"), ingress(peers(podPeer(sel("pod", "b"))))),
		}, []probe{
			"x/b -> x/a tcp/80 ok", "y/b -> x/a tcp/80 no", "x/c -> x/a tcp/80 no", "world -> x/a tcp/80 no",
			// x/b is not selected.
			"y/a -> x/b tcp/80 ok",
		}},
		{"empty podSelector peer: every pod of the namespace", []*networkingv1.NetworkPolicy{
			pol("x", "from-x", sel("pod", "a"), ingress(peers(podPeer(all)))),
		}, []probe{"x/b -> x/a tcp/80 ok", "x/c -> x/a tcp/80 ok", "y/b -> x/a tcp/80 no", "world -> x/a tcp/80 no"}},
		{"namespaceSelector peer: every pod of the matching namespaces", []*networkingv1.NetworkPolicy{
			pol("x", "from-y", sel("pod", "a"), ingress(peers(nsPeer(sel("ns", "y"))))),
		}, []probe{"y/a -> x/a tcp/80 ok", "y/c -> x/a udp/81 ok", "x/b -> x/a tcp/80 no", "z/a -> x/a tcp/80 no"}},
		{"namespaceSelector {} matches every namespace, not the world", []*networkingv1.NetworkPolicy{
			pol("x", "from-pods", sel("pod", "a"), ingress(peers(nsPeer(all)))),
		}, []probe{"y/a -> x/a tcp/80 ok", "x/b -> x/a tcp/80 ok", "z/c -> x/a tcp/80 ok", "world -> x/a tcp/80 no"}},
		{"both selectors in one peer: AND", []*networkingv1.NetworkPolicy{
			pol("x", "and", sel("pod", "a"), ingress(peers(nsPodPeer(sel("ns", "y"), sel("pod", "b"))))),
		}, []probe{"y/b -> x/a tcp/80 ok", "y/a -> x/a tcp/80 no", "x/b -> x/a tcp/80 no", "z/b -> x/a tcp/80 no"}},
		{"two peers: OR", []*networkingv1.NetworkPolicy{
			pol("x", "or", sel("pod", "a"), ingress(peers(nsPeer(sel("ns", "y")), podPeer(sel("pod", "b"))))),
		}, []probe{"y/a -> x/a tcp/80 ok", "x/b -> x/a tcp/80 ok", "z/b -> x/a tcp/80 no", "x/c -> x/a tcp/80 no"}},
		{"namespace selected by its name label", []*networkingv1.NetworkPolicy{
			pol("x", "by-name", sel("pod", "a"), ingress(peers(nsPeer(sel("kubernetes.io/metadata.name", "z"))))),
		}, []probe{"z/b -> x/a tcp/80 ok", "y/b -> x/a tcp/80 no"}},
		{"ipBlock with except", []*networkingv1.NetworkPolicy{
			pol("x", "block", sel("pod", "a"), ingress(peers(blockPeer("198.18.0.0/24", "198.18.0.1/32")))),
		}, []probe{"world2 -> x/a tcp/80 ok", "world -> x/a tcp/80 no", "x/b -> x/a tcp/80 no"}},
		{"ipBlock matches pod addresses too", []*networkingv1.NetworkPolicy{
			pol("x", "pod-ip", sel("pod", "a"), ingress(peers(blockPeer(podIP("x", "b").String()+"/32")))),
			pol("x", "pod-cidr-out", sel("pod", "b"), types(egressType), egress(peers(blockPeer("198.18.128.0/17", podIP("y", "c").String()+"/32")))),
		}, []probe{
			"x/b -> x/a tcp/80 ok", "x/c -> x/a tcp/80 no",
			"x/b -> y/a tcp/80 ok", "x/b -> z/c tcp/80 ok", "x/b -> y/c tcp/80 no", "x/b -> world tcp/80 no",
		}},
		{"ipBlock of the whole space except the cluster", []*networkingv1.NetworkPolicy{
			pol("x", "internet", sel("pod", "a"), types(egressType), egress(peers(blockPeer("0.0.0.0/0", "198.18.128.0/17")))),
		}, []probe{"x/a -> world tcp/443 ok", "x/a -> 203.0.113.7 udp/53 ok", "x/a -> y/a tcp/80 no", "x/a -> z/c tcp/80 no"}},
		{"numeric port and protocol", []*networkingv1.NetworkPolicy{
			pol("x", "tcp80", sel("pod", "a"), ingress(peers(podPeer(all)), port(TCP, 80))),
		}, []probe{"x/b -> x/a tcp/80 ok", "x/b -> x/a tcp/81 no", "x/b -> x/a udp/80 no", "x/b -> x/a sctp/80 no", "x/b -> x/a icmp/0 no"}},
		{"port without number: the whole protocol", []*networkingv1.NetworkPolicy{
			pol("x", "udp", sel("pod", "a"), ingress(peers(podPeer(all)), protoOnly(UDP))),
		}, []probe{"x/b -> x/a udp/80 ok", "x/b -> x/a udp/65535 ok", "x/b -> x/a tcp/80 no"}},
		{"UDP and SCTP ports", []*networkingv1.NetworkPolicy{
			pol("x", "udp-sctp", sel("pod", "a"), ingress(peers(podPeer(all)), port(UDP, 81), port(SCTP, 80))),
		}, []probe{"x/b -> x/a udp/81 ok", "x/b -> x/a sctp/80 ok", "x/b -> x/a udp/80 no", "x/b -> x/a sctp/81 no", "x/b -> x/a tcp/81 no"}},
		{"endPort range", []*networkingv1.NetworkPolicy{
			pol("x", "range", sel("pod", "a"), ingress(peers(podPeer(all)), portRange(TCP, 80, 81))),
		}, []probe{"x/b -> x/a tcp/80 ok", "x/b -> x/a tcp/81 ok", "x/b -> x/a tcp/79 no", "x/b -> x/a tcp/82 no", "x/b -> x/a udp/80 no"}},
		{"named ingress port resolves on each target pod", []*networkingv1.NetworkPolicy{
			pol("x", "web", all, ingress(peers(nsPeer(all)), namedPort(TCP, "web"))),
		}, []probe{
			"y/a -> x/a tcp/80 ok", "y/a -> x/a tcp/81 no", // web is 80 on a
			"y/a -> x/b tcp/81 ok", "y/a -> x/b tcp/80 no", // and 81 on b
		}},
		{"named port needs the protocol to match", []*networkingv1.NetworkPolicy{
			pol("x", "web-udp", sel("pod", "a"), ingress(peers(nsPeer(all)), namedPort(UDP, "web"), namedPort(UDP, "serve-81-udp"))),
		}, []probe{"y/a -> x/a udp/80 no", "y/a -> x/a tcp/80 no", "y/a -> x/a udp/81 ok"}},
		{"named egress port resolves on the destination pod", []*networkingv1.NetworkPolicy{
			pol("x", "to-web", sel("pod", "a"), types(egressType), egress(peers(nsPeer(all)), namedPort(TCP, "web"))),
		}, []probe{
			"x/a -> y/a tcp/80 ok", "x/a -> y/a tcp/81 no",
			"x/a -> y/b tcp/81 ok", "x/a -> y/b tcp/80 no",
			"x/a -> z/c tcp/80 ok",
		}},
		{"named egress port to all destinations matches pods only", []*networkingv1.NetworkPolicy{
			pol("x", "to-web", sel("pod", "a"), types(egressType), egress(nil, namedPort(TCP, "web"))),
		}, []probe{"x/a -> y/b tcp/81 ok", "x/a -> y/b tcp/80 no", "x/a -> world tcp/80 no", "x/a -> world tcp/81 no"}},
		{"policyTypes: Egress alone ignores ingress rules", []*networkingv1.NetworkPolicy{
			pol("x", "eg", sel("pod", "a"), types(egressType), ingress(peers(podPeer(sel("pod", "b"))))),
		}, []probe{"y/b -> x/a tcp/80 ok", "x/a -> x/b tcp/80 no"}},
		{"policyTypes defaulted: Egress when egress rules exist", []*networkingv1.NetworkPolicy{
			pol("x", "both", sel("pod", "a"), egress(peers(podPeer(sel("pod", "b"))))),
		}, []probe{"x/a -> x/b tcp/80 ok", "x/a -> y/b tcp/80 no", "x/b -> x/a tcp/80 no", "y/a -> x/a tcp/80 no"}},
		{"policyTypes defaulted: Ingress only without egress rules", []*networkingv1.NetworkPolicy{
			pol("x", "in", sel("pod", "a")),
		}, []probe{"x/b -> x/a tcp/80 no", "x/a -> y/b tcp/80 ok"}},
		{"policies are a union", []*networkingv1.NetworkPolicy{
			pol("x", "b80", sel("pod", "a"), ingress(peers(podPeer(sel("pod", "b"))), port(TCP, 80))),
			pol("x", "y81", sel("pod", "a"), ingress(peers(nsPeer(sel("ns", "y"))), port(TCP, 81))),
		}, []probe{"x/b -> x/a tcp/80 ok", "x/b -> x/a tcp/81 no", "y/a -> x/a tcp/81 ok", "y/a -> x/a tcp/80 no", "z/a -> x/a tcp/80 no"}},
		{"rules of one policy are a union", []*networkingv1.NetworkPolicy{
			pol("x", "two", sel("pod", "a"),
				ingress(peers(podPeer(sel("pod", "b"))), port(TCP, 80)),
				ingress(peers(blockPeer("198.18.0.0/24")), port(UDP, 81))),
		}, []probe{"x/b -> x/a tcp/80 ok", "x/b -> x/a udp/81 no", "world -> x/a udp/81 ok", "world -> x/a tcp/80 no"}},
		{"ingress and egress both apply between two local pods", []*networkingv1.NetworkPolicy{
			pol("x", "a-out", sel("pod", "a"), types(egressType), egress(peers(podPeer(sel("pod", "b"))), port(TCP, 80))),
			pol("x", "b-in", sel("pod", "b"), ingress(peers(podPeer(sel("pod", "a"))), port(TCP, 80), port(TCP, 81))),
		}, []probe{"x/a -> x/b tcp/80 ok", "x/a -> x/b tcp/81 no", "y/a -> x/b tcp/80 no"}},
		{"a pod reaching itself is policed like any other", []*networkingv1.NetworkPolicy{
			pol("x", "deny", sel("pod", "a")),
		}, []probe{"x/a -> x/a tcp/80 no"}},
		{"remote pods are policed on their own node", []*networkingv1.NetworkPolicy{
			pol("x", "deny", all, types(ingressType, egressType)),
		}, []probe{"y/a -> x/c tcp/80 ok", "x/c -> y/a tcp/80 ok"}},
		{"unknown addresses of the node's pod CIDR are dropped (fail closed)", nil, []probe{
			"world -> unknown tcp/80 no", "unknown -> world tcp/80 no", "x/a -> unknown tcp/80 no", "world -> 198.18.129.99 tcp/80 ok",
		}},
		{"a policy with an invalid CIDR opens nothing and blocks nothing else", []*networkingv1.NetworkPolicy{
			pol("x", "bad", sel("pod", "a"), ingress(peers(blockPeer("198.18.0.0/33")))),
		}, []probe{"world -> x/a tcp/80 no", "x/b -> x/a tcp/80 no", "world -> x/b tcp/80 ok", "world -> y/a tcp/80 ok"}},
		{"an invalid except drops the whole block", []*networkingv1.NetworkPolicy{
			pol("x", "bad-except", sel("pod", "a"), ingress(peers(blockPeer("198.18.0.0/24", "198.18.1.0/24")))),
		}, []probe{"world -> x/a tcp/80 no", "world2 -> x/a tcp/80 no"}},
		{"a rule whose only port is invalid matches nothing", []*networkingv1.NetworkPolicy{
			pol("x", "bad-port", sel("pod", "a"), ingress(peers(podPeer(all)), port(TCP, 70000))),
		}, []probe{"x/b -> x/a tcp/80 no", "x/b -> x/a tcp/4464 no"}},
		{"valid peers of a rule still work beside an invalid one", []*networkingv1.NetworkPolicy{
			pol("x", "half", sel("pod", "a"), ingress(peers(blockPeer("not-a-cidr"), podPeer(sel("pod", "b"))), portRange(TCP, 90, 80), port(TCP, 80))),
		}, []probe{"x/b -> x/a tcp/80 ok", "x/b -> x/a tcp/85 no", "world -> x/a tcp/80 no"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := Compile(newCluster().with(tc.policies...).in)
			checkProbes(t, res.Datapath, tc.probes)
		})
	}
}
