package policy

import networkingv1 "k8s.io/api/networking/v1"

// Changes: a policy updated and deleted, pods and namespaces relabelled.
// Selection follows labels: a relabelled peer or target is in or out of a
// policy as soon as firewalld sees the new labels, without any change to
// the policy.
func changeCases() []policyCase {
	xa := Pod("x", "a")
	onlyXA := Pods(xa)
	return []policyCase{
		{
			name: "update-and-delete",
			doc: "one policy on x/a, updated in place: from namespace y, then from z, then from z on tcp/81 only; " +
				"deleting it reopens x/a",
			steps: func(addresses) []step {
				// The same policy (same name) each time: an update.
				allow := func(r rule) []*networkingv1.NetworkPolicy {
					return policies(netpol("x", "allow", labels("pod", "a"), ingressRules(r)))
				}
				fromNS := func(ns string) rule { return from(namespacesWhere(labels("ns", ns))) }
				return []step{
					{
						name: "from-y", policies: allow(fromNS("y")),
						expect: func(e *Expectation) { e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, PodsIn("y")) },
					},
					{
						name: "from-z", policies: allow(fromNS("z")),
						expect: func(e *Expectation) { e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, PodsIn("z")) },
					},
					{
						name: "from-z-tcp-81", policies: allow(fromNS("z").on(port(TCP(81)))),
						expect: func(e *Expectation) { e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, PodsIn("z"), TCP(81)) },
					},
					{name: "deleted"},
				}
			},
		},
		{
			name: "relabel-source-pod",
			doc: "x/a admits pods labelled pod=b of every namespace; relabelling z/c to pod=b lets it in, " +
				"relabelling it back shuts it out again",
			steps: func(addresses) []step {
				p := policies(netpol("x", "from-b", labels("pod", "a"), ingressRules(from(podsWhereIn(everything(), labels("pod", "b"))))))
				bs := func(e *Expectation) { e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, PodsNamed("b")) }
				return []step{
					{name: "b-pods", policies: p, expect: bs},
					{
						name: "z-c-relabelled-b", policies: p,
						podLabels: map[Peer]map[string]string{Pod("z", "c"): {"pod": "b"}},
						expect: func(e *Expectation) {
							e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, Either(PodsNamed("b"), Pods(Pod("z", "c"))))
						},
					},
					{name: "z-c-back", policies: p, expect: bs},
				}
			},
		},
		{
			name: "relabel-target-pod",
			doc: "a policy isolates the pods labelled pod=a of x (admitting namespace y); relabelling x/b to pod=a " +
				"isolates it too, relabelling it back releases it",
			steps: func(addresses) []step {
				p := policies(netpol("x", "a-from-y", labels("pod", "a"), ingressRules(from(namespacesWhere(labels("ns", "y"))))))
				isolate := func(targets Selector) func(*Expectation) {
					return func(e *Expectation) { e.DenyIngressTo(targets).AllowIngressTo(targets, PodsIn("y")) }
				}
				return []step{
					{name: "x-a", policies: p, expect: isolate(onlyXA)},
					{
						name: "x-b-relabelled-a", policies: p,
						podLabels: map[Peer]map[string]string{Pod("x", "b"): {"pod": "a"}},
						expect:    isolate(Pods(xa, Pod("x", "b"))),
					},
					{name: "x-b-back", policies: p, expect: isolate(onlyXA)},
				}
			},
		},
		{
			name: "relabel-namespace",
			doc: "x/a admits the namespaces labelled team=blue: none at first, then y once labelled, then z once " +
				"the label moves from y to z",
			steps: func(addresses) []step {
				p := policies(netpol("x", "from-blue", labels("pod", "a"), ingressRules(from(namespacesWhere(labels("team", "blue"))))))
				from := func(ns ...string) func(*Expectation) {
					return func(e *Expectation) { e.DenyIngressTo(onlyXA).AllowIngressTo(onlyXA, PodsIn(ns...)) }
				}
				return []step{
					{name: "no-blue-namespace", policies: p, expect: from()},
					{
						name: "y-blue", policies: p,
						nsLabels: map[string]map[string]string{"y": {"ns": "y", "team": "blue"}},
						expect:   from("y"),
					},
					{
						name: "z-blue", policies: p,
						nsLabels: map[string]map[string]string{"z": {"ns": "z", "team": "blue"}},
						expect:   from("z"),
					},
				}
			},
		},
	}
}
