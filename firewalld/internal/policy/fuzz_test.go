package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FuzzCompile feeds arbitrary text where the API has strings (addresses,
// CIDRs, port names, label values, protocols): nothing may panic, and the
// datapath must keep its invariants.
func FuzzCompile(f *testing.F) {
	f.Add("198.18.0.0/24", "198.18.0.1/32", "web", "a", "TCP", "198.18.128.10", int32(80), int32(81))
	f.Add("::/0", "2001:db8::/32", "", "b", "SCTP", "2001:db8::1", int32(0), int32(-1))
	f.Add("bad", "", "x", "", "ICMP", "nope", int32(70000), int32(1))
	f.Fuzz(func(t *testing.T, cidr, except, portName, label, proto, ip string, p, end int32) {
		c := newCluster()
		pod := testPod("x", "fuzz")
		pod.Labels = map[string]string{"pod": label}
		pod.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		c.in.Pods = append(c.in.Pods, pod)
		pr := corev1.Protocol(proto)
		num := port(pr, int(p))
		num.EndPort = &end
		c.with(
			pol("x", "f1", sel("pod", label), ingress(peers(blockPeer(cidr, except), podPeer(sel("pod", label))), num, namedPort(pr, portName))),
			pol("x", "f2", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: label, Operator: metav1.LabelSelectorOperator(proto), Values: []string{portName}}}},
				types(egressType), egress(peers(blockPeer(cidr)), protoOnly(pr))),
		)
		dp := Compile(c.in).Datapath
		for k := range dp.Chains {
			if k.ID == 0 {
				t.Fatalf("chain without a group: %+v", k)
			}
		}
		for e := range dp.PeerElems {
			if e.Peer == 0 || e.To.Less(e.From) || e.From.BitLen() != e.To.BitLen() {
				t.Fatalf("bad peer element %+v", e)
			}
		}
	})
}
