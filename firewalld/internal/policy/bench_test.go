package policy

import (
	"fmt"
	"github.com/nodenet/nodenet/firewalld/internal/nft"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// scaleInput is a cluster of namespaces × apps × replicas pods spread over
// nodes (this node is n0), with policiesPerNS policies per namespace: each
// selects one app and lets in the next app of its namespace on a port, the
// pods of namespaces labelled with the same team on a named port, and an
// external range; every fifth also restricts egress.
func scaleInput(namespaces, apps, replicas, nodes, policiesPerNS int) Input {
	in := Input{Node: "n0", PodCIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/20")}}
	ip := 0
	for n := range namespaces {
		ns := fmt.Sprintf("ns-%d", n)
		in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{"team": fmt.Sprintf("t%d", n%10), "kubernetes.io/metadata.name": ns}}})
		for a := range apps {
			for r := range replicas {
				ip++
				p := testPod(ns, fmt.Sprintf("app-%d-%d", a, r))
				p.Labels = map[string]string{"app": fmt.Sprintf("app-%d", a), "pod-template-hash": fmt.Sprintf("h%d", a)}
				p.Spec.NodeName = fmt.Sprintf("n%d", ip%nodes)
				addr := netip.AddrFrom4([4]byte{198, 18, byte(128 + ip>>8&0x7f), byte(ip)})
				p.Status.PodIPs = []corev1.PodIP{{IP: addr.String()}}
				in.Pods = append(in.Pods, p)
			}
		}
		for i := range policiesPerNS {
			np := pol(ns, fmt.Sprintf("p-%d", i), sel("app", fmt.Sprintf("app-%d", i%apps)),
				ingress(peers(podPeer(sel("app", fmt.Sprintf("app-%d", (i+1)%apps)))), port(TCP, 8080)),
				ingress(peers(nsPeer(sel("team", fmt.Sprintf("t%d", n%10)))), namedPort(TCP, "web")),
				ingress(peers(blockPeer(fmt.Sprintf("198.18.%d.0/24", i%100), fmt.Sprintf("198.18.%d.128/25", i%100))), portRange(TCP, 9000, 9100)))
			if i%5 == 0 {
				np.Spec.PolicyTypes = []networkingv1.PolicyType{ingressType, egressType}
				egress(peers(nsPeer(sel()), blockPeer("198.18.0.0/24")), port(UDP, 53), port(TCP, 443))(np)
			}
			in.Policies = append(in.Policies, np)
		}
	}
	return in
}

// BenchmarkCompile: 1k policies × 10k pods (100 namespaces × 10 apps × 10
// replicas), with this node holding 1 pod in 50 (200) or every pod.
func BenchmarkCompile(b *testing.B) {
	for _, tc := range []struct {
		name  string
		nodes int
	}{{"local=200", 50}, {"local=all", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			in := scaleInput(100, 10, 10, tc.nodes, 10)
			var res Result
			b.ReportAllocs()
			for b.Loop() {
				res = Compile(in)
			}
			dp := res.Datapath
			b.ReportMetric(float64(res.Stats.LocalPolicies), "local-policies")
			rules := 0
			for _, rs := range dp.Chains {
				rules += len(rs)
			}
			b.ReportMetric(float64(len(dp.PeerElems)), "peer-elems")
			b.ReportMetric(float64(rules), "rules")
			b.ReportMetric(float64(res.Stats.Peers), "peer-sets")
			b.ReportMetric(float64(res.Stats.Groups), "groups")
			b.ReportMetric(float64(res.Stats.Identities), "identities")
		})
	}
}

// BenchmarkCompileChange: one change, compiled again by a warm Compiler
// (the controller's path), at 1k policies × 10k pods, 200 local.
func BenchmarkCompileChange(b *testing.B) {
	for _, tc := range []struct {
		name   string
		change func(in *Input, i int)
	}{
		{"pod-added", func(in *Input, i int) {
			p := in.Pods[i%len(in.Pods)].DeepCopy()
			p.Name += "-new"
			p.Status.PodIPs = []corev1.PodIP{{IP: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}).String()}}
			in.Pods = append(in.Pods[:len(in.Pods):len(in.Pods)], p)
		}},
		{"pod-relabelled", func(in *Input, i int) {
			j := i % len(in.Pods)
			p := in.Pods[j].DeepCopy()
			p.Labels = map[string]string{"app": fmt.Sprintf("other-%d", i)}
			in.Pods[j] = p
		}},
		{"policy-changed", func(in *Input, i int) {
			j := i % len(in.Policies)
			np := in.Policies[j].DeepCopy()
			np.Spec.Ingress = np.Spec.Ingress[:1+i%2]
			in.Policies[j] = np
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			base := scaleInput(100, 10, 10, 50, 10)
			cp := NewCompiler()
			cp.Compile(base)
			i := 0
			for b.Loop() {
				b.StopTimer()
				in := base
				in.Pods = slices.Clone(base.Pods)
				in.Policies = slices.Clone(base.Policies)
				tc.change(&in, i)
				i++
				b.StartTimer()
				cp.Compile(in)
			}
		})
	}
}

// BenchmarkMemoryPerPod: what a warm Compiler keeps per pod of the
// cluster (parsed pods, identities, addresses, peer sets), at 1k policies
// × 10k pods, the input objects not counted.
func BenchmarkMemoryPerPod(b *testing.B) {
	in := scaleInput(100, 10, 10, 50, 10)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cp := NewCompiler()
		cp.Compile(in)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(in.Pods)), "bytes/pod")
		runtime.KeepAlive(cp)
	}
}

// BenchmarkRulesPerPacket: the rules a packet between two pods meets at
// most, as the number of policies in the cluster grows: 100, 1k, 3k
// policies where a pod is selected by at most 1, 1 and 3 of them. The count
// follows the policies selecting the pod, not the total: the table's
// fixed rules (forward or output: 2-3, pods: 4 pending and 4 verdict maps)
// plus the longest egress and ingress group chains.
func BenchmarkRulesPerPacket(b *testing.B) {
	const fixed = 3 + 8
	for _, perNS := range []int{1, 10, 30} {
		b.Run(fmt.Sprintf("policies=%d", 100*perNS), func(b *testing.B) {
			in := scaleInput(100, 10, 10, 50, perNS)
			var longest [3]int
			for b.Loop() {
				dp := Compile(in).Datapath
				longest = [3]int{}
				for k, rs := range dp.Chains {
					// Each rule naming a peer set is one rule per family.
					n := 0
					for _, r := range rs {
						n++
						if r.Peer != 0 {
							n++
						}
					}
					longest[k.Direction] = max(longest[k.Direction], n+1) // and the final drop
				}
			}
			b.ReportMetric(float64(fixed+longest[1]+longest[2]), "max-rules/packet")
		})
	}
}

// BenchmarkPodChangeApplied: one change compiled by a warm Compiler and
// written by the nftables layer's ApplyDelta over its in-memory kernel
// (the Go side of a sync), at 1k policies × 10k pods with 200 on the node
// (appliedChanges says which changes). The same changes written into the
// real kernel: BenchmarkChangeKernel.
func BenchmarkPodChangeApplied(b *testing.B) {
	for _, c := range appliedChanges {
		b.Run(c.name, func(b *testing.B) {
			benchApplied(b, c, nft.NewFake(nft.Config{}), 200)
		})
	}
}

// appliedChange is a change done (even steps) and undone (odd steps).
type appliedChange struct {
	name   string
	change func(base Input, in *Input, i int)
}

// appliedChanges: "replicas" adds and removes pods of apps that already
// run on the node and elsewhere, as most changes are (a third of them
// local). "churn" adds and removes pods, some the first pod of their app
// on the node, whose egress policy names every pod of the cluster: the
// 10k-address peer set comes and goes with it. "policy" changes a policy
// (one ingress rule fewer) and back.
var appliedChanges = []appliedChange{
	{"replicas", func(base Input, in *Input, i int) {
		// Copies of pods already on this node keep to apps it runs.
		var local []*corev1.Pod
		for _, p := range base.Pods {
			if p.Spec.NodeName == base.Node {
				local = append(local, p)
			}
		}
		p := local[i%len(local)].DeepCopy()
		if i%3 != 0 {
			p.Spec.NodeName = "elsewhere"
		}
		addPod(in, p, i)
	}},
	{"churn", func(base Input, in *Input, i int) {
		p := base.Pods[(i/2)%len(base.Pods)].DeepCopy()
		if i%3 == 0 {
			p.Spec.NodeName = base.Node
		}
		addPod(in, p, i)
	}},
	{"policy", func(base Input, in *Input, i int) {
		j := (i / 2 * 7) % len(base.Policies)
		np := base.Policies[j].DeepCopy()
		np.Spec.Ingress = np.Spec.Ingress[1:]
		in.Policies[j] = np
	}},
}

func addPod(in *Input, p *corev1.Pod, i int) {
	p.Name += "-new"
	p.Status.PodIPs = []corev1.PodIP{{IP: netip.AddrFrom4([4]byte{198, 18, 200, byte(i)}).String()}}
	in.Pods = append(in.Pods, p)
}

// benchApplied applies n changes of c (done, then undone) to table per
// iteration and reports the p50, p99 and largest of their latencies.
func benchApplied(b *testing.B, c appliedChange, table nft.Interface, n int) {
	base := scaleInput(100, 10, 10, 50, 10)
	cp := NewCompiler()
	if _, err := table.Apply(cp.Compile(base).Datapath); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for b.Loop() {
		for i := range n {
			in := base
			if i%2 == 0 {
				in.Pods = slices.Clone(base.Pods)
				in.Policies = slices.Clone(base.Policies)
				c.change(base, &in, i)
			}
			start := time.Now()
			res := cp.Compile(in)
			if _, err := table.ApplyDelta(res.Datapath, res.Delta); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(ds[len(ds)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds()), "max-µs")
}
