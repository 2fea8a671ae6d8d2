package policy

// Peers: podSelector (the policy's own namespace), namespaceSelector, both in
// one peer (AND) and as two peers (OR), for ingress and egress.
func peerCases() []policyCase {
	xa := Pod("x", "a")
	onlyXA := Pods(xa)
	return []policyCase{
		{
			name: "pod-selector",
			doc:  "a podSelector peer selects pods of the policy's namespace only: x/a admits x/b, not y/b nor z/b",
			steps: func(addresses) []step {
				return []step{{
					name:     "from-pod-b",
					policies: policies(netpol("x", "from-b", labels("pod", "a"), ingressRules(from(podsWhere(labels("pod", "b")))))),
					expect:   func(e *Expectation) { e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, Pods(Pod("x", "b"))) },
				}}
			},
		},
		{
			name: "pod-selector-match-expressions",
			doc:  "podSelector with matchExpressions (pod In [b, c]): x/a admits x/b and x/c",
			steps: func(addresses) []step {
				return []step{{
					name:     "from-pod-in-b-c",
					policies: policies(netpol("x", "from-b-c", labels("pod", "a"), ingressRules(from(podsWhere(in("pod", "b", "c")))))),
					expect: func(e *Expectation) {
						e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, Pods(Pod("x", "b"), Pod("x", "c")))
					},
				}}
			},
		},
		{
			name: "pod-selector-empty",
			doc:  "podSelector {} as a peer is every pod of the policy's namespace: y admits y only (not x, z, nor the world)",
			steps: func(addresses) []step {
				return []step{{
					name:     "y-from-y",
					policies: policies(netpol("y", "same-namespace", everything(), ingressRules(from(podsWhere(everything()))))),
					expect:   func(e *Expectation) { e.DenyIngressTo(PodsIn("y")).AllowIngressTo(PodsIn("y"), PodsIn("y")) },
				}}
			},
		},
		{
			name: "namespace-selector",
			doc:  "a namespaceSelector peer selects every pod of the namespaces it matches: x/a admits y only",
			steps: func(addresses) []step {
				return []step{{
					name:     "from-ns-y",
					policies: policies(netpol("x", "from-y", labels("pod", "a"), ingressRules(from(namespacesWhere(labels("ns", "y")))))),
					expect:   func(e *Expectation) { e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, PodsIn("y")) },
				}}
			},
		},
		{
			name: "namespace-selector-match-expressions",
			doc:  "namespaceSelector on the apiserver's name label with NotIn [x]: x/a admits y and z, not x",
			steps: func(addresses) []step {
				return []step{{
					name: "from-ns-not-x",
					policies: policies(netpol("x", "from-other-namespaces", labels("pod", "a"),
						ingressRules(from(namespacesWhere(notIn(namespaceNameLabel, "x")))))),
					expect: func(e *Expectation) { e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, PodsIn("y", "z")) },
				}}
			},
		},
		{
			name: "namespace-selector-empty",
			doc:  "namespaceSelector {} is every pod of every namespace, but not the world client (no pod)",
			steps: func(addresses) []step {
				return []step{{
					name:     "from-all-namespaces",
					policies: policies(netpol("x", "from-all-pods", labels("pod", "a"), ingressRules(from(namespacesWhere(everything()))))),
					expect:   func(e *Expectation) { e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, AllPods()) },
				}}
			},
		},
		{
			name: "namespace-and-pod-selector",
			doc: "both selectors in ONE peer must both match (AND): namespace In [y, z] and pod b admits y/b and z/b, " +
				"not x/b (wrong namespace) nor y/a (wrong pod)",
			steps: func(addresses) []step {
				return []step{{
					name: "from-y-z-pod-b",
					policies: policies(netpol("x", "and", labels("pod", "a"),
						ingressRules(from(podsWhereIn(in("ns", "y", "z"), labels("pod", "b")))))),
					expect: func(e *Expectation) {
						e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, Pods(Pod("y", "b"), Pod("z", "b")))
					},
				}}
			},
		},
		{
			name: "namespace-or-pod-selector",
			doc:  "the same selectors as TWO peers allow either (OR): namespace y, or pod b of the policy's namespace",
			steps: func(addresses) []step {
				return []step{{
					name: "from-y-or-pod-b",
					policies: policies(netpol("x", "or", labels("pod", "a"),
						ingressRules(from(namespacesWhere(labels("ns", "y")), podsWhere(labels("pod", "b")))))),
					expect: func(e *Expectation) {
						e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, Either(PodsIn("y"), Pods(Pod("x", "b"))))
					},
				}}
			},
		},
		{
			name: "egress-peers",
			doc:  "egress with two peers: x/a reaches namespace z and x/b, nothing else (not the world)",
			steps: func(addresses) []step {
				return []step{{
					name: "to-z-or-pod-b",
					policies: policies(netpol("x", "to-z-or-b", labels("pod", "a"), policyTypes(egressType),
						egressRules(to(namespacesWhere(labels("ns", "z")), podsWhere(labels("pod", "b")))))),
					expect: func(e *Expectation) {
						e.DenyEgressFrom(onlyXA).AllowEgressFrom(onlyXA, Either(PodsIn("z"), Pods(Pod("x", "b"))))
					},
				}}
			},
		},
		{
			name: "egress-cross-node",
			doc: "egress from y/c (node1) to one peer with both selectors: it reaches x/a only, on node0; " +
				"the source's node must stop the rest (x/b on node0, y/a on node0, ...)",
			steps: func(addresses) []step {
				yc := Pods(Pod("y", "c"))
				return []step{{
					name: "to-x-a",
					policies: policies(netpol("y", "to-x-a", labels("pod", "c"), policyTypes(egressType),
						egressRules(to(podsWhereIn(labels("ns", "x"), labels("pod", "a")))))),
					expect: func(e *Expectation) { e.DenyEgressFrom(yc).AllowEgressFrom(yc, onlyXA) },
				}}
			},
		},
	}
}
