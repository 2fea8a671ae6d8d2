//go:build kernel

package nft

// Real packets through proxyd's table on the host kernel, which has no
// IPVS. The node routes the VIPs to a backend namespace that holds them
// as local addresses (an any-IP route), so the table's marks, masquerade
// and drops act on forwarded traffic as they do beside IPVS; for the
// hairpin, a DNAT rule in a test table stands in for IPVS's scheduling
// (what IPVS does with conntrack on is the same to netfilter: the
// destination changes after prerouting's filter chains). The real IPVS
// runs in the VM test.
//
// Address plan (dual stack), all in namespaces of this test:
//
//	ext  eth0 198.18.0.2, 198.18.0.50, 2001:db8:a::2, 2001:db8:a::50   (clients outside the pod CIDR)
//	node n-ext 198.18.0.1, 2001:db8:a::1
//	node n-be  198.18.1.1, 2001:db8:b::1 ── be eth0 198.18.1.2, 2001:db8:b::2,
//	     be holds 198.19.0.0/24 and 2001:db8:19::/64 (any-IP), serves :80
//	node br0   198.18.128.1, 2001:db8:80::1 (pod CIDRs 198.18.128.0/24, 2001:db8:80::/64)
//	     podA 198.18.128.2, 2001:db8:80::2; podB 198.18.128.3, 2001:db8:80::3, both serve :8080
//
// VIPs (port 80, tcp; .x is 198.19.0.x and 2001:db8:19::x):
//
//	.10 ClusterIP                          masqueraded unless from a pod
//	.11 LoadBalancer, ETP Local            client kept
//	.12 LoadBalancer, sources 198.18.0.0/28, 2001:db8:a::/124 (client .2 in, .50 out)
//	.13 LoadBalancer, no sources           nobody
//	.20 ClusterIP "scheduled" (DNAT) to podB:8080, .21 to podA:8080 (hairpin)
//	.99 not a VIP

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// dialTimeout bounds a connection; generous for the VM (TCG), never waited
// for by a passing run.
const dialTimeout = 20 * time.Second

// addrPlan is one family's addresses.
type addrPlan struct {
	name                     string
	client, outsider         netip.Addr
	nodeExt, nodeBe, bridge  netip.Addr
	podA, podB               netip.Addr
	podCIDR, clientRange     netip.Prefix
	vip                      func(last byte) netip.Addr
	nfproto                  byte
	saddrOffset, daddrOffset uint32
}

// addressPlans are the two families of the address plan.
func addressPlans() []addrPlan {
	return []addrPlan{
		{
			name:   "IPv4",
			client: netip.MustParseAddr("198.18.0.2"), outsider: netip.MustParseAddr("198.18.0.50"),
			nodeExt: netip.MustParseAddr("198.18.0.1"), nodeBe: netip.MustParseAddr("198.18.1.1"),
			bridge: netip.MustParseAddr("198.18.128.1"),
			podA:   netip.MustParseAddr("198.18.128.2"), podB: netip.MustParseAddr("198.18.128.3"),
			podCIDR: netip.MustParsePrefix("198.18.128.0/24"), clientRange: netip.MustParsePrefix("198.18.0.0/28"),
			vip:     func(b byte) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, 0, b}) },
			nfproto: unix.NFPROTO_IPV4, saddrOffset: 12, daddrOffset: 16,
		},
		{
			name:   "IPv6",
			client: netip.MustParseAddr("2001:db8:a::2"), outsider: netip.MustParseAddr("2001:db8:a::50"),
			nodeExt: netip.MustParseAddr("2001:db8:a::1"), nodeBe: netip.MustParseAddr("2001:db8:b::1"),
			bridge: netip.MustParseAddr("2001:db8:80::1"),
			podA:   netip.MustParseAddr("2001:db8:80::2"), podB: netip.MustParseAddr("2001:db8:80::3"),
			podCIDR: netip.MustParsePrefix("2001:db8:80::/64"), clientRange: netip.MustParsePrefix("2001:db8:a::/124"),
			vip: func(b byte) netip.Addr {
				return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0x19, 15: b})
			},
			nfproto: unix.NFPROTO_IPV6, saddrOffset: 8, daddrOffset: 24,
		},
	}
}

// The VIPs' last bytes.
const (
	vipMasq    = 10
	vipLocal   = 11
	vipAllowed = 12
	vipNobody  = 13
	vipToB     = 20
	vipToA     = 21
	notVIP     = 99
)

func hp(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// topology is the namespaces of the address plan.
type topology struct {
	node, ext, be, podA, podB netns.NsHandle
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	tp := &topology{node: netnstest.New(t), ext: netnstest.New(t), be: netnstest.New(t), podA: netnstest.New(t), podB: netnstest.New(t)}
	sysctl(t, tp.node, "net.ipv4.ip_forward", "1")
	sysctl(t, tp.node, "net.ipv6.conf.all.forwarding", "1")
	// Bridged traffic must not pass the IP hooks (br_netfilter), or a
	// backend's answer over the bridge would be de-NATed anyway and the
	// hairpin check would prove nothing. The VM has no br_netfilter.
	for _, name := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"} {
		if _, err := os.Stat("/proc/sys/" + strings.ReplaceAll(name, ".", "/")); err == nil {
			sysctl(t, tp.node, name, "0")
		}
	}

	netnstest.Veth(t, netnstest.End{NS: tp.node, Name: "n-ext", Addrs: []string{"198.18.0.1/24", "2001:db8:a::1/64"}},
		netnstest.End{NS: tp.ext, Name: "eth0", Addrs: []string{"198.18.0.2/24", "198.18.0.50/24", "2001:db8:a::2/64", "2001:db8:a::50/64"}})
	defaultRoute(t, tp.ext, "198.18.0.1")
	defaultRoute(t, tp.ext, "2001:db8:a::1")

	netnstest.Veth(t, netnstest.End{NS: tp.node, Name: "n-be", Addrs: []string{"198.18.1.1/24", "2001:db8:b::1/64"}},
		netnstest.End{NS: tp.be, Name: "eth0", Addrs: []string{"198.18.1.2/24", "2001:db8:b::2/64"}})
	defaultRoute(t, tp.be, "198.18.1.1")
	defaultRoute(t, tp.be, "2001:db8:b::1")
	route(t, tp.node, "198.19.0.0/24", "198.18.1.2")
	route(t, tp.node, "2001:db8:19::/64", "2001:db8:b::2")
	anyIP(t, tp.be, "198.19.0.0/24")
	anyIP(t, tp.be, "2001:db8:19::/64")
	netnstest.ServeWho(t, tp.be, ":80")

	newBridge(t, tp.node, "br0", "198.18.128.1/24", "2001:db8:80::1/64")
	attach(t, tp.node, "br0", "n-a", tp.podA, []string{"198.18.128.2/24", "2001:db8:80::2/64"}, "198.18.128.1", "2001:db8:80::1")
	attach(t, tp.node, "br0", "n-b", tp.podB, []string{"198.18.128.3/24", "2001:db8:80::3/64"}, "198.18.128.1", "2001:db8:80::1")
	netnstest.ServeWho(t, tp.podA, ":8080")
	netnstest.ServeWho(t, tp.podB, ":8080")
	return tp
}

// anyIP makes every address of cidr local to ns (a local route on lo).
func anyIP(t *testing.T, ns netns.NsHandle, cidr string) {
	t.Helper()
	h := netnstest.Handle(t, ns)
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	dst, err := netlink.ParseIPNet(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.RouteAdd(&netlink.Route{Dst: dst, LinkIndex: lo.Attrs().Index, Type: unix.RTN_LOCAL,
		Table: unix.RT_TABLE_LOCAL, Scope: unix.RT_SCOPE_HOST}); err != nil {
		t.Fatalf("local route %s: %v", cidr, err)
	}
}

// desiredFor is the services of the address plan, both families.
func desiredFor(ranges map[string][]string) Desired {
	plans := addressPlans()
	var s model.State
	for _, p := range plans {
		k := func(b byte) model.VSKey { return model.VSKey{Addr: p.vip(b), Port: 80, Proto: model.TCP} }
		s.Services = append(s.Services,
			vs(k(vipMasq), model.ClusterIP),
			vs(k(vipLocal), model.LoadBalancer, local),
			vs(k(vipAllowed), model.LoadBalancer, restricted(ranges[p.name]...)),
			vs(k(vipNobody), model.LoadBalancer, restricted()),
			vs(k(vipToB), model.ClusterIP),
			vs(k(vipToA), model.ClusterIP),
		)
	}
	return Build(s, []netip.Prefix{plans[0].podCIDR, plans[1].podCIDR})
}

func defaultRanges() map[string][]string {
	plans := addressPlans()
	return map[string][]string{plans[0].name: {plans[0].clientRange.String()}, plans[1].name: {plans[1].clientRange.String()}}
}

// probe is a (source, VIP) pair whose packets a test table counts before
// proxyd's filter chains (priority -150) and after them (-50), in
// prerouting, or in output for the node's own connections (out).
type probe struct {
	p   addrPlan
	src netip.Addr
	vip byte
	out bool
}

func (pr probe) String() string { return fmt.Sprintf("%s → %s", pr.src, pr.p.vip(pr.vip)) }

func (pr probe) chains() (before, after string) {
	if pr.out {
		return "out-before", "out-after"
	}
	return "before", "after"
}

func (pr probe) exprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{pr.p.nfproto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: pr.p.saddrOffset, Len: uint32(pr.src.BitLen() / 8)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: pr.src.AsSlice()},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: pr.p.daddrOffset, Len: uint32(pr.src.BitLen() / 8)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: pr.p.vip(pr.vip).AsSlice()},
		&expr.Counter{},
	}
}

const testTable = "nodenet-proxyd-test"

// standIn adds the test table: the probes' counters and the DNAT that
// stands in for IPVS scheduling the hairpin VIPs to the pods.
func standIn(t *testing.T, ns netns.NsHandle, probes []probe) {
	t.Helper()
	c := nftConn(t, ns)
	tbl := c.AddTable(&nftables.Table{Name: testTable, Family: nftables.TableFamilyINet})
	accept := nftables.ChainPolicyAccept
	for _, ch := range []struct {
		name string
		hook *nftables.ChainHook
		prio nftables.ChainPriority
	}{
		{"before", nftables.ChainHookPrerouting, -150}, {"after", nftables.ChainHookPrerouting, -50},
		{"out-before", nftables.ChainHookOutput, -150}, {"out-after", nftables.ChainHookOutput, -50},
	} {
		chain := c.AddChain(&nftables.Chain{Name: ch.name, Table: tbl, Type: nftables.ChainTypeFilter,
			Hooknum: ch.hook, Priority: nftables.ChainPriorityRef(ch.prio), Policy: &accept})
		for _, pr := range probes {
			c.AddRule(&nftables.Rule{Table: tbl, Chain: chain, Exprs: pr.exprs()})
		}
	}
	plans := addressPlans()
	nat := c.AddChain(&nftables.Chain{Name: "ipvs-standin", Table: tbl, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
	for _, p := range plans {
		for _, to := range []struct {
			vip byte
			pod netip.Addr
		}{{vipToB, p.podB}, {vipToA, p.podA}} {
			c.AddRule(&nftables.Rule{Table: tbl, Chain: nat, Exprs: []expr.Any{
				&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p.nfproto}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: p.daddrOffset, Len: uint32(to.pod.BitLen() / 8)},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.vip(to.vip).AsSlice()},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(80)},
				&expr.Immediate{Register: 1, Data: to.pod.AsSlice()},
				&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(8080)},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(p.nfproto), RegAddrMin: 1, RegProtoMin: 2, Specified: true},
			}})
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("test table: %v", err)
	}
}

// counts returns a probe's packets before and after proxyd's chain.
func counts(t *testing.T, ns netns.NsHandle, probes []probe, pr probe) (before, after uint64) {
	t.Helper()
	i := -1
	for j, q := range probes {
		if q.p.name == pr.p.name && q.src == pr.src && q.vip == pr.vip && q.out == pr.out {
			i = j
		}
	}
	c := nftConn(t, ns)
	tbl := &nftables.Table{Name: testTable, Family: nftables.TableFamilyINet}
	var got [2]uint64
	b, a := pr.chains()
	for k, name := range []string{b, a} {
		rules, err := c.GetRules(tbl, &nftables.Chain{Name: name, Table: tbl})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range rules[i].Exprs {
			if ctr, ok := e.(*expr.Counter); ok {
				got[k] = ctr.Packets
			}
		}
	}
	return got[0], got[1]
}

// seenAs connects from ns (from src, when valid) to dst and returns the
// client address the server saw.
func seenAs(t *testing.T, ns netns.NsHandle, src netip.Addr, dst netip.AddrPort) netip.Addr {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), dialTimeout)
	defer cancel()
	a, err := netnstest.Who(ctx, ns, src, dst)
	if err != nil {
		from := "default source"
		if src.IsValid() {
			from = src.String()
		}
		t.Fatalf("%s → %v: %v", from, dst, err)
	}
	return a
}

// expectDropped starts a connection that proxyd's chain must drop and
// waits for proof: two SYNs (the first and its retransmission) counted
// before the chain, none after it, no connection.
func expectDropped(t *testing.T, tp *topology, probes []probe, pr probe) {
	t.Helper()
	b0, a0 := counts(t, tp.node, probes, pr)
	ctx, cancel := context.WithTimeout(t.Context(), dialTimeout)
	defer cancel()
	from := tp.ext
	if pr.out {
		from = tp.node
	}
	done := make(chan error, 1)
	go func() {
		_, err := netnstest.Who(ctx, from, pr.src, hp(pr.p.vip(pr.vip), 80))
		done <- err
	}()
	netnstest.WaitFor(t, dialTimeout, pollInterval, "two SYNs of "+pr.String()+" to reach the node", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("%v: connection ended before it was seen dropped: %v", pr, err)
		default:
		}
		b, a := counts(t, tp.node, probes, pr)
		return b >= b0+2, fmt.Sprintf("before %d, after %d", b-b0, a-a0)
	})
	if _, a := counts(t, tp.node, probes, pr); a != a0 {
		t.Fatalf("%v: %d packets passed proxyd's chain, want none", pr, a-a0)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatalf("%v: connected, want dropped", pr)
	}
}

func TestKernelTraffic(t *testing.T) {
	tp := newTopology(t)
	plans := addressPlans()
	var probes []probe
	for _, p := range plans {
		probes = append(probes, probe{p, p.outsider, vipAllowed, false}, probe{p, p.client, vipNobody, false},
			probe{p, p.client, vipAllowed, false}, probe{p, p.nodeExt, vipNobody, true})
	}
	standIn(t, tp.node, probes)
	tb := New(Config{NetNS: int(tp.node)})
	mustApply(t, tb, desiredFor(defaultRanges()))

	for _, p := range plans {
		t.Run(p.name, func(t *testing.T) {
			for _, c := range []struct {
				what     string
				from     netns.NsHandle
				src      netip.Addr
				vip      byte
				port     uint16
				wantSeen netip.Addr
			}{
				{"client outside the pod CIDR is masqueraded", tp.ext, p.client, vipMasq, 80, p.nodeBe},
				{"not a VIP: untouched", tp.ext, p.client, notVIP, 80, p.client},
				{"externalTrafficPolicy Local keeps the client", tp.ext, p.client, vipLocal, 80, p.client},
				{"a pod keeps its address to a remote backend", tp.podA, netip.Addr{}, vipMasq, 80, p.podA},
				{"an allowed source reaches a restricted VIP", tp.ext, p.client, vipAllowed, 80, p.nodeBe},
				{"the node's own connection is masqueraded (output)", tp.node, p.nodeExt, vipMasq, 80, p.nodeBe},
				{"hairpin: pod to another local pod through a VIP", tp.podA, netip.Addr{}, vipToB, 80, p.bridge},
				{"hairpin: pod to itself through a VIP", tp.podA, netip.Addr{}, vipToA, 80, p.bridge},
			} {
				if got := seenAs(t, c.from, c.src, hp(p.vip(c.vip), c.port)); got != c.wantSeen {
					t.Errorf("%s: the server saw %v, want %v", c.what, got, c.wantSeen)
				}
			}

			// loadBalancerSourceRanges.
			expectDropped(t, tp, probes, probe{p, p.outsider, vipAllowed, false})
			expectDropped(t, tp, probes, probe{p, p.client, vipNobody, false})
			// The node's own connections are checked in output.
			expectDropped(t, tp, probes, probe{p, p.nodeExt, vipNobody, true})
		})
	}

	// A delta moves the allowed source: the one allowed before is now
	// dropped, the other gets in.
	t.Run("source ranges change", func(t *testing.T) {
		ranges := map[string][]string{
			plans[0].name: {netip.PrefixFrom(plans[0].outsider, 32).String()},
			plans[1].name: {netip.PrefixFrom(plans[1].outsider, 128).String()},
		}
		res := mustApply(t, tb, desiredFor(ranges))
		// One element deleted and one added in lb_allowed4 and lb_allowed6.
		if res != (Result{Writes: 4, Ops: Ops{ElementsAdded: 2, ElementsDeleted: 2}}) {
			t.Fatalf("Apply %+v, want two elements replaced in each of two sets", res)
		}
		for _, p := range plans {
			if got := seenAs(t, tp.ext, p.outsider, hp(p.vip(vipAllowed), 80)); got != p.nodeBe {
				t.Errorf("%s: newly allowed source seen as %v, want %v", p.name, got, p.nodeBe)
			}
			expectDropped(t, tp, probes, probe{p, p.client, vipAllowed, false})
		}
	})
}
