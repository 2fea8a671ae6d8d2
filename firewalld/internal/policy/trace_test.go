package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	networkingv1 "k8s.io/api/networking/v1"
)

// The cluster of helpers_test.go: a and b of each namespace on this node,
// c on another; world outside the cluster.

// traceEnd makes "x/a" a pod end and anything else an address end.
func traceEnd(t *testing.T, s string) End {
	if strings.Contains(s, "/") {
		return End{Pod: s}
	}
	return End{Addr: addr(t, s)}
}

func TestTrace(t *testing.T) {
	denyIn := pol("x", "deny-in", sel(), types(ingressType))
	for _, tc := range []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
		probe    probe
		egress   Check
		ingress  Check
		// matched are the rules that let the packet pass, "policy rule".
		matched []string
	}{
		{name: "no policy", probe: "x/b -> x/a tcp/80 ok", egress: NotIsolated, ingress: NotIsolated},
		{name: "default deny ingress", policies: []*networkingv1.NetworkPolicy{denyIn},
			probe: "y/a -> x/a tcp/80 no", egress: NotIsolated, ingress: CheckDenied},
		{name: "pod selector", policies: []*networkingv1.NetworkPolicy{denyIn,
			pol("x", "from-b", sel("pod", "a"), ingress(peers(podPeer(sel("pod", "b")))))},
			probe: "x/b -> x/a tcp/80 ok", egress: NotIsolated, ingress: CheckAllowed, matched: []string{"x/from-b ingress[0]"}},
		{name: "pod selector, other namespace", policies: []*networkingv1.NetworkPolicy{
			pol("x", "from-b", sel("pod", "a"), ingress(peers(podPeer(sel("pod", "b")))))},
			probe: "y/b -> x/a tcp/80 no", egress: NotIsolated, ingress: CheckDenied},
		{name: "namespace selector from a remote pod", policies: []*networkingv1.NetworkPolicy{
			pol("x", "from-y", sel(), ingress(peers(nsPeer(sel("ns", "y")))))},
			probe: "y/c -> x/a tcp/80 ok", egress: NotLocal, ingress: CheckAllowed, matched: []string{"x/from-y ingress[0]"}},
		{name: "ipBlock", policies: []*networkingv1.NetworkPolicy{
			pol("x", "block", sel(), ingress(peers(blockPeer("198.18.0.0/24", "198.18.0.2/32"))))},
			probe: "world -> x/a tcp/80 ok", egress: NotLocal, ingress: CheckAllowed, matched: []string{"x/block ingress[0]"}},
		{name: "ipBlock except", policies: []*networkingv1.NetworkPolicy{
			pol("x", "block", sel(), ingress(peers(blockPeer("198.18.0.0/24", "198.18.0.2/32"))))},
			probe: "world2 -> x/a tcp/80 no", egress: NotLocal, ingress: CheckDenied},
		{name: "port", policies: []*networkingv1.NetworkPolicy{
			pol("x", "port", sel(), ingress(nil, port(TCP, 80)))},
			probe: "x/b -> x/a tcp/80 ok", egress: NotIsolated, ingress: CheckAllowed, matched: []string{"x/port ingress[0]"}},
		{name: "wrong port", policies: []*networkingv1.NetworkPolicy{
			pol("x", "port", sel(), ingress(nil, port(TCP, 80)))},
			probe: "x/b -> x/a tcp/81 no", egress: NotIsolated, ingress: CheckDenied},
		{name: "named port on the target", policies: []*networkingv1.NetworkPolicy{
			pol("x", "web", sel(), ingress(nil, namedPort(TCP, "web")))},
			probe: "x/a -> x/b tcp/81 ok", egress: NotIsolated, ingress: CheckAllowed, matched: []string{"x/web ingress[0]"}},
		{name: "named port, other number", policies: []*networkingv1.NetworkPolicy{
			pol("x", "web", sel(), ingress(nil, namedPort(TCP, "web")))},
			probe: "x/a -> x/b tcp/80 no", egress: NotIsolated, ingress: CheckDenied},
		{name: "egress deny to a remote destination", policies: []*networkingv1.NetworkPolicy{
			pol("x", "deny-out", sel(), types(egressType))},
			probe: "x/a -> world tcp/443 no", egress: CheckDenied, ingress: NotLocal},
		{name: "egress named port on the destination", policies: []*networkingv1.NetworkPolicy{
			pol("x", "out-web", sel(), egress(peers(nsPeer(sel())), namedPort(TCP, "web")))},
			probe: "x/a -> y/c tcp/80 ok", egress: CheckAllowed, ingress: NotLocal, matched: []string{"x/out-web egress[0]"}},
		{name: "both local, egress allows, ingress denies", policies: []*networkingv1.NetworkPolicy{
			pol("x", "out", sel("pod", "b"), egress(peers(podPeer(sel("pod", "a"))))),
			pol("x", "in", sel("pod", "a"), ingress(peers(podPeer(sel("pod", "c")))))},
			probe: "x/b -> x/a udp/53 no", egress: CheckAllowed, ingress: CheckDenied, matched: []string{"x/out egress[0]"}},
		{name: "both local, both allow", policies: []*networkingv1.NetworkPolicy{
			pol("x", "out", sel("pod", "b"), egress(peers(podPeer(sel("pod", "a"))))),
			pol("x", "in", sel("pod", "a"), ingress(peers(podPeer(sel("pod", "c"))), port(UDP, 54)),
				ingress(peers(podPeer(sel("pod", "b"))), portRange(UDP, 50, 60)))},
			probe: "x/b -> x/a udp/53 ok", egress: CheckAllowed, ingress: CheckAllowed, matched: []string{"x/in ingress[1]", "x/out egress[0]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster().with(tc.policies...)
			cp := NewCompiler()
			res := cp.Compile(c.in)
			checkProbes(t, res.Datapath, []probe{tc.probe})
			f := strings.Fields(string(tc.probe))
			src, dst, proto, port, want := tc.probe.parse(t)
			tr, err := cp.Trace(Query{From: traceEnd(t, f[0]), To: traceEnd(t, f[2]), Proto: proto, Port: port})
			if err != nil {
				t.Fatal(err)
			}
			// The trace's verdict is the compiled datapath's.
			if tr.From.Addr != src || tr.To.Addr != dst {
				t.Fatalf("ends %v -> %v, want %v -> %v", tr.From.Addr, tr.To.Addr, src, dst)
			}
			if got := res.Datapath.Judge(src, dst, proto, port); tr.Verdict != got || (got == model.Allowed) != want {
				t.Errorf("verdict %s, datapath %s, want allowed=%v", tr.Verdict, got, want)
			}
			if tr.Egress.Check != tc.egress || tr.Ingress.Check != tc.ingress {
				t.Errorf("egress %d ingress %d, want %d and %d", tr.Egress.Check, tr.Ingress.Check, tc.egress, tc.ingress)
			}
			var matched []string
			for _, d := range []DirectionTrace{tr.Egress, tr.Ingress} {
				agree(t, res.Datapath, d, tr)
				for _, p := range d.Policies {
					for _, r := range p.Rules {
						if r.Matched {
							matched = append(matched, p.Name+" "+r.Rule)
						}
					}
				}
			}
			slices.Sort(matched)
			if !slices.Equal(matched, tc.matched) {
				t.Errorf("matched rules %q, want %q", matched, tc.matched)
			}
		})
	}
}

// agree holds a direction's rule attribution to the chain the table is
// built from: a rule matches exactly when the group's chain passes the
// packet, and the group is the one the end's address maps to.
func agree(t *testing.T, dp *model.Datapath, d DirectionTrace, tr Trace) {
	t.Helper()
	if d.Check != CheckAllowed && d.Check != CheckDenied {
		if len(d.Policies) != 0 {
			t.Errorf("not isolated, yet policies %v", d.Policies)
		}
		return
	}
	some := false
	for _, p := range d.Policies {
		for _, r := range p.Rules {
			some = some || r.Matched
		}
	}
	if some != (d.Check == CheckAllowed) {
		t.Errorf("a rule matched: %v, but the check is %d", some, d.Check)
	}
	if dp.EgressGroup[tr.From.Addr] != d.Group && dp.IngressGroup[tr.To.Addr] != d.Group {
		t.Errorf("group %s is neither end's", d.Group)
	}
}

func TestTraceBadInput(t *testing.T) {
	cp := NewCompiler()
	if _, err := cp.Trace(Query{From: End{Pod: "x/a"}, To: End{Pod: "x/b"}}); err == nil {
		t.Error("trace before a compile: no error")
	}
	cp.Compile(newCluster().in)
	for _, q := range []Query{
		{From: End{Pod: "x/nobody"}, To: End{Pod: "x/a"}},
		{From: End{Pod: "x/a"}, To: End{}},
		{From: End{Pod: "x/a"}, To: End{Addr: addr(t, "2001:db8::1")}},
	} {
		if _, err := cp.Trace(q); err == nil {
			t.Errorf("%+v: no error", q)
		}
	}
}

func TestTraceDescriptions(t *testing.T) {
	c := newCluster().with(pol("x", "p", sel(), ingress(peers(nsPodPeer(sel("ns", "y"), sel("pod", "a")), blockPeer("198.18.0.0/24", "198.18.0.2/32")),
		port(TCP, 80), portRange(UDP, 50, 60), namedPort(TCP, "web"), protoOnly(SCTP))))
	cp := NewCompiler()
	cp.Compile(c.in)
	tr, err := cp.Trace(Query{From: End{Pod: "y/a"}, To: End{Pod: "x/a"}, Proto: model.ProtoSCTP, Port: 9})
	if err != nil {
		t.Fatal(err)
	}
	r := tr.Ingress.Policies[0].Rules[0]
	if want := "pods pod=a in namespaces ns=y; ipBlock 198.18.0.0/24 except 198.18.0.2/32"; r.Peers != want {
		t.Errorf("peers %q, want %q", r.Peers, want)
	}
	if want := "TCP/80, UDP/50-60, TCP/web, SCTP (every port)"; r.Ports != want {
		t.Errorf("ports %q, want %q", r.Ports, want)
	}
	if !r.Matched || tr.Verdict != model.Allowed {
		t.Errorf("%+v, verdict %s", r, tr.Verdict)
	}
}
