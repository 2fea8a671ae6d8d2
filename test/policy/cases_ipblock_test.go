package policy

import "net/netip"

// ipBlock peers: the world client (outside the cluster, 198.18.0.1 on the
// underlay), and pod IPs as upstream's tests use them (/32 of a pod, a
// node's pod CIDR with except). Pod IPs in ipBlocks are matched as any
// other address: nothing NATs pod-to-pod traffic in this cluster.
func ipBlockCases() []policyCase {
	xa := Pod("x", "a")
	onlyXA := Pods(xa)
	return []policyCase{
		{
			name: "ipblock-ingress-world",
			doc:  "ingress from the underlay's /24: the world client reaches x, pods (outside that block) do not",
			steps: func(a addresses) []step {
				underlay := netip.PrefixFrom(a.WorldIP(), 24).Masked()
				return []step{{
					name:     "from-underlay",
					policies: policies(netpol("x", "from-underlay", everything(), ingressRules(from(cidr(underlay))))),
					expect:   func(e *Expectation) { e.DenyIngressTo(PodsIn("x")).AllowIngressTo(PodsIn("x"), TheWorld()) },
				}}
			},
		},
		{
			name: "ipblock-ingress-except",
			doc: "ingress from 198.18.0.0/15 except node0's pod CIDR and the world's /32: only pods on node1 reach x; " +
				"then a second peer naming the world's /32 lets the world in too (an address in one peer's except " +
				"and in another peer is allowed)",
			steps: func(a addresses) []step {
				all := netip.MustParsePrefix("198.18.0.0/15")
				except := cidr(all, a.PodCIDR(0), host(a.WorldIP()))
				return []step{
					{
						name:     "except",
						policies: policies(netpol("x", "from-block", everything(), ingressRules(from(except)))),
						expect:   func(e *Expectation) { e.DenyIngressTo(PodsIn("x")).AllowIngressTo(PodsIn("x"), PodsNamed("c")) },
					},
					{
						name:     "except-and-overlap",
						policies: policies(netpol("x", "from-block", everything(), ingressRules(from(except, cidr(host(a.WorldIP())))))),
						expect: func(e *Expectation) {
							e.DenyIngressTo(PodsIn("x")).AllowIngressTo(PodsIn("x"), Either(PodsNamed("c"), TheWorld()))
						},
					},
				}
			},
		},
		{
			name: "ipblock-egress-pod",
			doc:  "egress to one pod's IP/32 (upstream: egress access to a server in a CIDR block): x/a reaches y/b only",
			steps: func(a addresses) []step {
				yb := Pod("y", "b")
				return []step{{
					name:     "to-y-b",
					policies: policies(netpol("x", "to-y-b", labels("pod", "a"), policyTypes(egressType), egressRules(to(cidr(host(a.PodIP(yb))))))),
					expect:   func(e *Expectation) { e.DenyEgressFrom(onlyXA).AllowEgressFrom(onlyXA, Pods(yb)) },
				}}
			},
		},
		{
			name: "ipblock-egress-except",
			doc: "egress to node1's pod CIDR except y/c's /32: x/a reaches x/c and z/c; then a second peer with y/c's " +
				"/32 (the address both excepted and allowed) makes y/c reachable",
			steps: func(a addresses) []step {
				yc := Pod("y", "c")
				block := cidr(a.PodCIDR(1), host(a.PodIP(yc)))
				return []step{
					{
						name:     "except",
						policies: policies(netpol("x", "to-node1", labels("pod", "a"), policyTypes(egressType), egressRules(to(block)))),
						expect: func(e *Expectation) {
							e.DenyEgressFrom(onlyXA).AllowEgressFrom(onlyXA, Pods(Pod("x", "c"), Pod("z", "c")))
						},
					},
					{
						name: "except-and-overlap",
						policies: policies(netpol("x", "to-node1", labels("pod", "a"), policyTypes(egressType),
							egressRules(to(block, cidr(host(a.PodIP(yc))))))),
						expect: func(e *Expectation) { e.DenyEgressFrom(onlyXA).AllowEgressFrom(onlyXA, PodsNamed("c")) },
					},
				}
			},
		},
		{
			name: "ipblock-egress-world",
			doc:  "egress to the world's /32: the pods of x reach the world client and no pod",
			steps: func(a addresses) []step {
				return []step{{
					name:     "to-world",
					policies: policies(netpol("x", "to-world", everything(), policyTypes(egressType), egressRules(to(cidr(host(a.WorldIP())))))),
					expect:   func(e *Expectation) { e.DenyEgressFrom(PodsIn("x")).AllowEgressFrom(PodsIn("x"), TheWorld()) },
				}}
			},
		},
	}
}
