package policy

import corev1 "k8s.io/api/core/v1"

// Ports: numeric, defaulted protocol, named (resolved on each destination
// pod), ranges (endPort), protocol only, UDP and SCTP.
func portCases() []policyCase {
	x := PodsIn("x")
	return []policyCase{
		{
			name: "port-numeric",
			doc: "a rule with ports and no peers: x admits anyone on tcp/81 only; then the same with the protocol left " +
				"out (the apiserver defaults it to TCP) on port 80",
			steps: func(addresses) []step {
				return []step{
					{
						name:     "tcp-81",
						policies: policies(netpol("x", "tcp-81", everything(), ingressRules(anything().on(port(TCP(81)))))),
						expect:   func(e *Expectation) { e.DenyIngressTo(x).AllowIngressTo(x, Anyone(), TCP(81)) },
					},
					{
						name:     "80-default-protocol",
						policies: policies(netpol("x", "tcp-81", everything(), ingressRules(anything().on(portNoProtocol(80))))),
						expect:   func(e *Expectation) { e.DenyIngressTo(x).AllowIngressTo(x, Anyone(), TCP(80)) },
					},
				}
			},
		},
		{
			name: "port-named",
			doc:  "a named port (serve-80-udp) allows what the destination pod declares under that name: udp/80",
			steps: func(addresses) []step {
				return []step{{
					name:     "serve-80-udp",
					policies: policies(netpol("x", "named", everything(), ingressRules(anything().on(namedPort(corev1.ProtocolUDP, UDP(80).ContainerPortName()))))),
					expect:   func(e *Expectation) { e.DenyIngressTo(x).AllowIngressTo(x, Anyone(), UDP(80)) },
				}}
			},
		},
		{
			name: "port-named-per-pod",
			doc: "a named port resolves on each selected pod: \"http\" is tcp/80 on x/a and x/b but tcp/81 on x/c; " +
				"for egress it resolves on each destination (y/a reaches a and b pods on tcp/80, c pods on tcp/81)",
			steps: func(addresses) []step {
				ya := Pods(Pod("y", "a"))
				return []step{
					{
						name:     "ingress-http",
						policies: policies(netpol("x", "http", everything(), ingressRules(anything().on(namedPort(corev1.ProtocolTCP, "http"))))),
						expect: func(e *Expectation) {
							e.DenyIngressTo(x).
								AllowIngressTo(Pods(Pod("x", "a"), Pod("x", "b")), Anyone(), TCP(80)).
								AllowIngressTo(Pods(Pod("x", "c")), Anyone(), TCP(81))
						},
					},
					{
						name: "egress-http",
						policies: policies(netpol("y", "to-http", labels("pod", "a"), policyTypes(egressType),
							egressRules(to(namespacesWhere(everything())).on(namedPort(corev1.ProtocolTCP, "http"))))),
						expect: func(e *Expectation) {
							e.DenyEgressFrom(ya).
								AllowEgressFrom(ya, PodsNamed("a", "b"), TCP(80)).
								AllowEgressFrom(ya, PodsNamed("c"), TCP(81))
						},
					},
				}
			},
		},
		{
			name: "port-range",
			doc:  "endPort: tcp 80-81 and udp 81-1000 allow tcp/80, tcp/81 and udp/81, not udp/80",
			steps: func(addresses) []step {
				return []step{{
					name: "ranges",
					policies: policies(netpol("x", "ranges", everything(), ingressRules(anything().on(
						portRange(corev1.ProtocolTCP, 80, 81), portRange(corev1.ProtocolUDP, 81, 1000))))),
					expect: func(e *Expectation) { e.DenyIngressTo(x).AllowIngressTo(x, Anyone(), TCP(80), TCP(81), UDP(81)) },
				}}
			},
		},
		{
			name: "protocol-udp",
			doc:  "udp/80 allowed does not allow tcp/80 (the protocol is part of the port)",
			steps: func(addresses) []step {
				return []step{{
					name:     "udp-80",
					policies: policies(netpol("x", "udp-80", everything(), ingressRules(anything().on(port(UDP(80)))))),
					expect:   func(e *Expectation) { e.DenyIngressTo(x).AllowIngressTo(x, Anyone(), UDP(80)) },
				}}
			},
		},
		{
			name: "protocol-only",
			doc:  "a port with a protocol and no number allows every port of that protocol: UDP, not TCP",
			steps: func(addresses) []step {
				return []step{{
					name:     "any-udp",
					policies: policies(netpol("x", "any-udp", everything(), ingressRules(anything().on(anyPortOf(corev1.ProtocolUDP))))),
					expect:   func(e *Expectation) { e.DenyIngressTo(x).AllowIngressTo(x, Anyone(), UDP(80), UDP(81)) },
				}}
			},
		},
		{
			name:      "protocol-sctp",
			doc:       "sctp/80 allowed: only sctp/80 reaches x (TCP and UDP on 80 do not); needs kernel SCTP",
			needsSCTP: true,
			steps: func(addresses) []step {
				return []step{{
					name:     "sctp-80",
					policies: policies(netpol("x", "sctp-80", everything(), ingressRules(anything().on(port(SCTP(80)))))),
					expect:   func(e *Expectation) { e.DenyIngressTo(x).AllowIngressTo(x, Anyone(), SCTP(80)) },
				}}
			},
		},
	}
}
