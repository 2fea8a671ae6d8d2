package policy

import networkingv1 "k8s.io/api/networking/v1"

// Isolation: which pods a policy selects, in which direction, and what an
// empty or an allow-all rule list does. Reading guide for every matrix: a
// pod always reaches itself and its own node, and its node (the kubelet)
// always reaches it, whatever the policies (see the package comment).
func isolationCases() []policyCase {
	return []policyCase{
		{
			name:    "no-policy",
			doc:     "without any policy every pod is reachable from every pod, the world client and its node, on every port, and reaches them",
			ungated: true,
			steps:   func(addresses) []step { return []step{{name: "none"}} },
		},
		{
			name: "deny-ingress-namespace",
			doc:  "podSelector {} with an empty ingress list isolates every pod of x for ingress; x still reaches everyone (egress is not isolated)",
			steps: func(addresses) []step {
				return []step{{
					name:     "deny",
					policies: policies(netpol("x", "deny-ingress", everything(), policyTypes(ingressType), ingressRules())),
					expect:   func(e *Expectation) { e.DenyIngressTo(PodsIn("x")) },
				}}
			},
		},
		{
			name: "deny-egress-namespace",
			doc:  "policyTypes [Egress] with no egress rules isolates every pod of x for egress; x stays reachable",
			steps: func(addresses) []step {
				return []step{{
					name:     "deny",
					policies: policies(netpol("x", "deny-egress", everything(), policyTypes(egressType))),
					expect:   func(e *Expectation) { e.DenyEgressFrom(PodsIn("x")) },
				}}
			},
		},
		{
			name: "deny-all-namespace",
			doc:  "one policy with both types and no rules isolates x both ways",
			steps: func(addresses) []step {
				return []step{{
					name:     "deny",
					policies: policies(netpol("x", "deny-all", everything(), policyTypes(ingressType, egressType))),
					expect:   func(e *Expectation) { e.DenyIngressTo(PodsIn("x")).DenyEgressFrom(PodsIn("x")) },
				}}
			},
		},
		{
			name: "deny-all-everywhere",
			doc: "every pod isolated both ways: only the exceptions are left (a pod reaches itself through its own IP, " +
				"the kubelet reaches its pods, a pod reaches its own node); the world client is cut off both ways",
			steps: func(addresses) []step {
				var ps []*networkingv1.NetworkPolicy
				for _, ns := range DefaultModel().Namespaces {
					ps = append(ps, netpol(ns, "deny-all", everything(), policyTypes(ingressType, egressType)))
				}
				return []step{{
					name:     "deny",
					policies: ps,
					expect:   func(e *Expectation) { e.DenyIngressTo(AllPods()).DenyEgressFrom(AllPods()) },
				}}
			},
		},
		{
			name: "allow-all-ingress",
			doc: "ingress [{}] (one empty rule) allows everything to the pods it selects, and a union with a deny-all " +
				"policy is still everything: x/a open, x/b and x/c isolated",
			steps: func(addresses) []step {
				return []step{{
					name: "deny-x-allow-a",
					policies: policies(
						netpol("x", "deny-ingress", everything(), policyTypes(ingressType)),
						netpol("x", "allow-all-to-a", labels("pod", "a"), ingressRules(anything())),
					),
					expect: func(e *Expectation) {
						e.DenyIngressTo(PodsIn("x")).AllowIngressTo(Pods(Pod("x", "a")), Anyone())
					},
				}}
			},
		},
		{
			name: "allow-all-egress",
			doc:  "egress [{}] allows x/a to reach everything although a deny-all-egress policy selects it too",
			steps: func(addresses) []step {
				return []step{{
					name: "deny-x-allow-a",
					policies: policies(
						netpol("x", "deny-egress", everything(), policyTypes(egressType)),
						netpol("x", "allow-all-from-a", labels("pod", "a"), policyTypes(egressType), egressRules(anything())),
					),
					expect: func(e *Expectation) {
						e.DenyEgressFrom(PodsIn("x")).AllowEgressFrom(Pods(Pod("x", "a")), Anyone())
					},
				}}
			},
		},
		{
			name: "policy-types-defaulted-ingress",
			doc: "without policyTypes and without egress rules a policy is Ingress only: x/a admits only namespace y, " +
				"and still reaches everyone (a direction no policy isolates is unrestricted)",
			steps: func(addresses) []step {
				return []step{{
					name:     "ingress-from-y",
					policies: policies(netpol("x", "from-y", labels("pod", "a"), ingressRules(from(namespacesWhere(labels("ns", "y")))))),
					expect: func(e *Expectation) {
						e.DenyIngressTo(Pods(Pod("x", "a"))).AllowIngressTo(Pods(Pod("x", "a")), PodsIn("y"))
					},
				}}
			},
		},
		{
			name: "policy-types-defaulted-egress",
			doc: "without policyTypes but with egress rules a policy is Ingress and Egress: x/a reaches only " +
				"namespace y, and since it has no ingress rules nothing reaches x/a",
			steps: func(addresses) []step {
				return []step{{
					name:     "egress-to-y",
					policies: policies(netpol("x", "to-y", labels("pod", "a"), egressRules(to(namespacesWhere(labels("ns", "y")))))),
					expect: func(e *Expectation) {
						a := Pods(Pod("x", "a"))
						e.DenyIngressTo(a).DenyEgressFrom(a).AllowEgressFrom(a, PodsIn("y"))
					},
				}}
			},
		},
		{
			name: "policy-types-egress-ignores-ingress-rules",
			doc:  "policyTypes [Egress] with ingress rules: the ingress rules are ignored and x/a's ingress stays open",
			steps: func(addresses) []step {
				return []step{{
					name: "egress-only",
					policies: policies(netpol("x", "egress-only", labels("pod", "a"), policyTypes(egressType),
						ingressRules(from(podsWhere(labels("pod", "b")))),
						egressRules(to(namespacesWhere(labels("ns", "y")))))),
					expect: func(e *Expectation) {
						a := Pods(Pod("x", "a"))
						e.DenyEgressFrom(a).AllowEgressFrom(a, PodsIn("y"))
					},
				}}
			},
		},
		{
			name: "union",
			doc: "three policies select x/a, each allowing something else (y/a on every port, z/b on tcp/80, the " +
				"world on udp/81): x/a admits exactly their union",
			steps: func(a addresses) []step {
				xa := labels("pod", "a")
				return []step{{
					name: "three-policies",
					policies: policies(
						netpol("x", "from-y-a", xa, ingressRules(from(podsWhereIn(labels("ns", "y"), labels("pod", "a"))))),
						netpol("x", "from-z-b-tcp-80", xa, ingressRules(from(podsWhereIn(labels("ns", "z"), labels("pod", "b"))).on(port(TCP(80))))),
						netpol("x", "from-world-udp-81", xa, ingressRules(from(cidr(host(a.WorldIP()))).on(port(UDP(81))))),
					),
					expect: func(e *Expectation) {
						xa := Pods(Pod("x", "a"))
						e.DenyIngressTo(xa).
							AllowIngressTo(xa, Pods(Pod("y", "a"))).
							AllowIngressTo(xa, Pods(Pod("z", "b")), TCP(80)).
							AllowIngressTo(xa, TheWorld(), UDP(81))
					},
				}}
			},
		},
	}
}
