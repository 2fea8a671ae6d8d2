package policy

import (
	"net/netip"
	"slices"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// planAddresses is an address plan like the kernel test's (test/netns:
// node i's pods in 198.18.(128+i).0/24, the world at 198.18.0.1), with pod
// IPs made up: the checks below need no cluster.
type planAddresses struct{}

func (planAddresses) PodIP(p Peer) netip.Addr {
	m := DefaultModel()
	i := slices.Index(m.Namespaces, p.Namespace)*len(m.PodNames) + slices.Index(m.PodNames, p.Name)
	return netip.AddrFrom4([4]byte{198, 18, byte(128 + nodeOf(p)), byte(10 + i)})
}

func (planAddresses) PodCIDR(node int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(128 + node), 0}), 24)
}

func (planAddresses) WorldIP() netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, 1}) }

// Every step of every case: the matrix written by hand is the one the
// reference evaluator computes from the step's policies and labels. Runs
// without root; the kernel test repeats it with the real pod IPs.
func TestCasesAgreeWithReference(t *testing.T) {
	names := map[string]bool{}
	for _, c := range allCases() {
		if names[c.name] {
			t.Errorf("two cases are called %q", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			if c.doc == "" {
				t.Error("the case says nothing about what it checks (doc)")
			}
			for _, s := range c.steps(planAddresses{}) {
				if err := checkStep(DefaultModel(), planAddresses{}, s); err != nil {
					t.Errorf("step %s: %v", s.name, err)
				}
			}
		})
	}
}

// The reference evaluator itself, on the cases its readings of the API
// turn on.
func TestReference(t *testing.T) {
	m := DefaultModel()
	xa, xb, ya := Pod("x", "a"), Pod("x", "b"), Pod("y", "a")
	ref := referenceAt(m, planAddresses{}, step{})
	check := func(name string, ps []*networkingv1.NetworkPolicy, c Cell, want bool) {
		t.Helper()
		got, err := ref.reachable(ps, c)
		if err != nil || got != want {
			t.Errorf("%s: %s reachable = %v, %v; want %v", name, c, got, err, want)
		}
	}
	denyX := netpol("x", "deny", everything(), policyTypes(ingressType))
	check("no policy", nil, Cell{ya, xa, TCP(80)}, true)
	check("default deny", policies(denyX), Cell{ya, xa, TCP(80)}, false)
	check("a pod reaches itself", policies(denyX), Cell{xa, xa, TCP(80)}, true)
	check("the kubelet reaches its pods", policies(denyX), Cell{OwnNode(), xa, UDP(81)}, true)
	check("egress not isolated by an ingress policy", policies(denyX), Cell{xa, ya, TCP(80)}, true)
	defaulted := netpol("x", "to-y", labels("pod", "a"), egressRules(to(namespacesWhere(labels("ns", "y")))))
	check("defaulted types include Ingress", policies(defaulted), Cell{xb, xa, TCP(80)}, false)
	check("defaulted types include Egress", policies(defaulted), Cell{xa, xb, TCP(80)}, false)
	check("egress allowed", policies(defaulted), Cell{xa, ya, TCP(80)}, true)
	named := netpol("x", "http", everything(), ingressRules(anything().on(namedPort("TCP", "http"))))
	check("http is tcp/80 on a", policies(named), Cell{ya, xa, TCP(80)}, true)
	check("http is tcp/81 on c", policies(named), Cell{ya, Pod("x", "c"), TCP(80)}, false)
	check("http is tcp/81 on c", policies(named), Cell{ya, Pod("x", "c"), TCP(81)}, true)
	block := netpol("x", "block", everything(), ingressRules(from(cidr(netip.MustParsePrefix("198.18.0.0/15"), host(planAddresses{}.WorldIP())))))
	check("world excepted", policies(block), Cell{World(), xa, TCP(80)}, false)
	check("pod in block", policies(block), Cell{ya, xa, TCP(80)}, true)
}
