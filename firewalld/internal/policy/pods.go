package policy

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// podInfo is a pod that has addresses and is not on the host's network:
// the pods policies can select and name as peers. It is derived from one
// version of the Pod object and never changed after.
type podInfo struct {
	namespace, name string
	labels          map[string]string
	ips             []netip.Addr
	node            string
	deleting        bool
	created         int64
	// ports are the pod's named container ports, "name/PROTOCOL" → port.
	ports    map[string]uint16
	identKey string
	// ident is the pod's identity, set when the compiler counts the pod.
	ident    *identity
	problems []Problem
}

// parsePod returns the pod's info, nil for pods policies do not see (on
// the host's network, finished, or without a valid address).
func parsePod(p *corev1.Pod) *podInfo {
	if p.Spec.HostNetwork || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return nil
	}
	info := &podInfo{namespace: p.Namespace, name: p.Name, labels: p.Labels, node: p.Spec.NodeName,
		deleting: p.DeletionTimestamp != nil, created: p.CreationTimestamp.UnixNano(), ports: namedPorts(p)}
	var ps problemList
	for _, s := range podIPStrings(p) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			ps.add("Pod", p.Namespace, p.Name, ReasonInvalidPodIP, "status.podIPs: %q: %v; the address is ignored", s, err)
			continue
		}
		if ip = ip.Unmap(); !slices.Contains(info.ips, ip) {
			info.ips = append(info.ips, ip)
		}
	}
	info.problems = ps.list
	info.identKey = identityKey(info)
	return info
}

// wins reports whether p keeps an address it shares with q (a stale pod
// whose address was reused): the one not being deleted, then the newer,
// then by name, so the choice does not depend on listing order.
func (p *podInfo) wins(q *podInfo) bool {
	return cmp.Or(
		cmp.Compare(boolInt(p.deleting), boolInt(q.deleting)),
		cmp.Compare(q.created, p.created),
		cmp.Compare(p.namespace, q.namespace), cmp.Compare(p.name, q.name)) < 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func podIPStrings(p *corev1.Pod) []string {
	var out []string
	for _, ip := range p.Status.PodIPs {
		out = append(out, ip.IP)
	}
	if len(out) == 0 && p.Status.PodIP != "" {
		out = append(out, p.Status.PodIP)
	}
	return out
}

// namedPorts returns the pod's named ports; the first container declaring
// a name and protocol wins. Sidecars (init containers that keep running)
// serve too, so their ports count.
func namedPorts(p *corev1.Pod) map[string]uint16 {
	var out map[string]uint16
	add := func(cs []corev1.Container) {
		for _, c := range cs {
			for _, cp := range c.Ports {
				if cp.Name == "" || cp.ContainerPort < 1 || cp.ContainerPort > 65535 {
					continue
				}
				proto := cp.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				k := cp.Name + "/" + string(proto)
				if out == nil {
					out = map[string]uint16{}
				}
				if _, ok := out[k]; !ok {
					out[k] = uint16(cp.ContainerPort)
				}
			}
		}
	}
	add(p.Spec.Containers)
	add(p.Spec.InitContainers)
	return out
}

// identity is what selectors can see of a pod: its namespace, its labels
// and its named ports. Namespace labels are looked up when matching, so
// relabelling a namespace changes which peers an identity matches, not the
// identity's number.
type identity struct {
	key   string
	count int // pods with this identity
	// ips are the addresses its pods own.
	ips       map[netip.Addr]struct{}
	namespace string
	labels    map[string]string
	ports     map[string]uint16
}

func identityKey(p *podInfo) string {
	var b strings.Builder
	b.WriteString("ident\x00")
	b.WriteString(p.namespace)
	b.WriteByte(0)
	b.WriteString(sortedLabels(p.labels))
	b.WriteByte(0)
	names := make([]string, 0, len(p.ports))
	for n := range p.ports {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(int(p.ports[n])))
		b.WriteByte(',')
	}
	return b.String()
}
