package desired

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// node is a Node named name with InternalIP ip (none when ""), pod CIDR
// cidr (none when "") and annotations kv (key, value, key, value …).
func node(name, ip, cidr string, kv ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}}}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	}
	if cidr != "" {
		n.Spec.PodCIDRs = []string{cidr}
		n.Spec.PodCIDR = cidr
	}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Annotations[kv[i]] = kv[i+1]
	}
	return n
}

func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func reasons(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name+":"+p.Reason)
	}
	return out
}
