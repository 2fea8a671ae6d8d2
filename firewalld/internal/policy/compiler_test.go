package policy

import (
	"fmt"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// TestCompilerMatchesCompile drives one Compiler through random changes,
// each made the way informers make them (a changed object is a new
// pointer), and checks every result against a fresh Compile.
func TestCompilerMatchesCompile(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	c := newCluster()
	cp := NewCompiler()
	var prev *model.Datapath
	for step := range 1000 {
		in := &c.in
		var what string
		switch r.IntN(7) {
		case 0: // new policy set
			in.Policies = randomPolicies(r)
			what = "policies replaced"
		case 1: // one policy changed
			if len(in.Policies) > 0 {
				i := r.IntN(len(in.Policies))
				np := in.Policies[i].DeepCopy()
				np.Spec.PolicyTypes = []networkingv1.PolicyType{ingressType, egressType}[:1+r.IntN(2)]
				in.Policies = slices.Clone(in.Policies)
				in.Policies[i] = np
				what = "policy types changed"
			}
		case 2: // pod relabelled
			i := r.IntN(len(in.Pods))
			p := in.Pods[i].DeepCopy()
			p.Labels = map[string]string{"pod": []string{"a", "b", "c"}[r.IntN(3)]}
			if r.IntN(2) == 0 {
				p.Labels["version"] = fmt.Sprint(r.IntN(5)) // a label set that may be new
			}
			in.Pods = slices.Clone(in.Pods)
			in.Pods[i] = p
			what = "pod relabelled"
		case 3: // pod added
			p := testPod([]string{"x", "y", "z"}[r.IntN(3)], []string{"a", "b", "c"}[r.IntN(3)])
			p.Name = fmt.Sprintf("extra-%d", step)
			ip := netip.AddrFrom4([4]byte{198, 18, 128, byte(100 + step%100)})
			p.Status.PodIPs = []corev1.PodIP{{IP: ip.String()}}
			in.Pods = append(slices.Clone(in.Pods), p)
			what = "pod added"
		case 4: // pod removed
			if len(in.Pods) > 3 {
				i := r.IntN(len(in.Pods))
				in.Pods = slices.Delete(slices.Clone(in.Pods), i, i+1)
				what = "pod removed"
			}
		case 5: // namespace relabelled
			i := r.IntN(len(in.Namespaces))
			ns := in.Namespaces[i].DeepCopy()
			ns.Labels["ns"] = []string{"x", "y", "z", "w"}[r.IntN(4)]
			in.Namespaces = slices.Clone(in.Namespaces)
			in.Namespaces[i] = ns
			what = "namespace relabelled"
		default:
			what = "nothing"
		}
		got := cp.Compile(*in)
		want := Compile(*in)
		if diff := datapathDiff(got.Datapath, want.Datapath); diff != "" {
			t.Fatalf("step %d (%s): the incremental compile differs from a fresh one: %s", step, what, diff)
		}
		if prev != nil {
			got.Delta.ApplyTo(prev)
			if diff := datapathDiff(prev, got.Datapath); diff != "" {
				t.Fatalf("step %d (%s): the previous datapath and the delta do not make the new one: %s", step, what, diff)
			}
		}
		prev = got.Datapath.Clone()
		if !reflect.DeepEqual(got.Groups, want.Groups) || got.Stats != want.Stats {
			t.Fatalf("step %d (%s): groups or stats differ: %+v vs %+v", step, what, got.Stats, want.Stats)
		}
		if len(got.Problems) != len(want.Problems) {
			t.Fatalf("step %d (%s): problems %v vs %v", step, what, got.Problems, want.Problems)
		}
	}
}

// datapathDiff names the fields of two datapaths that differ.
func datapathDiff(a, b *model.Datapath) string {
	var out []string
	for name, eq := range map[string]bool{
		"LocalCIDRs": reflect.DeepEqual(a.LocalCIDRs, b.LocalCIDRs), "KnownLocal": reflect.DeepEqual(a.KnownLocal, b.KnownLocal),
		"IngressGroup": reflect.DeepEqual(a.IngressGroup, b.IngressGroup), "EgressGroup": reflect.DeepEqual(a.EgressGroup, b.EgressGroup),
		"Chains": reflect.DeepEqual(a.Chains, b.Chains), "PeerElems": reflect.DeepEqual(a.PeerElems, b.PeerElems),
	} {
		if !eq {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
