//go:build kernel

package policy

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// serviceVIP is the address the test's stand-in for a service proxy
// translates to x/a (198.19.0.0/16 is the suite's service range).
var serviceVIP = netip.MustParseAddr("198.19.0.10")

// testServiceTrafficPoliced: a service proxy on the node rewrites the
// destination of packets to a VIP into a local pod's address (here a DNAT
// rule of the test's own table, as kube-proxy's nftables mode does; proxyd's
// IPVS path is covered in the VM). The pod's ingress policy applies to the
// translated packets: the allowed client gets in through the VIP, the
// others, same node or outside, do not.
func (f *fixture) testServiceTrafficPoliced(t *testing.T) {
	f.requireEnforcement(t)
	f.timeCase(t, "service-traffic-policed")
	t.Log("node0 translates " + serviceVIP.String() + ":80 to x/a:80; x/a admits pods labelled pod=b only")
	t.Cleanup(func() { f.reset(t) })
	ctx, cancel := stepContext(t, 2*convergeTimeout)
	defer cancel()
	node := f.nodes[0]
	xa := f.PodIP(Pod("x", "a"))
	if err := addDNAT(node.Fd(), serviceVIP, xa); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = delDNAT(node.Fd()) })
	if err := f.topo.World().AddRoute(netip.PrefixFrom(serviceVIP, 32), node.IP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.topo.World().DelRoute(netip.PrefixFrom(serviceVIP, 32)) })
	if err := f.nodes[1].AddRoute(netip.PrefixFrom(serviceVIP, 32), node.IP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.nodes[1].DelRoute(netip.PrefixFrom(serviceVIP, 32)) })

	type probe struct {
		from Peer
		want bool
	}
	check := func(what string, probes []probe) {
		t.Helper()
		var fails []string
		// Converge like the matrices: firewalld may not have synced yet.
		if err := pollUntil(ctx, convergeTimeout, func() bool {
			fails = fails[:0]
			if err := f.flushConntrack(); err != nil {
				fails = append(fails, err.Error())
				return false
			}
			for _, p := range probes {
				_, err := dial(ctx, f.source(p.from), serviceVIP, TCP(80))
				if (err == nil) != p.want {
					fails = append(fails, fmt.Sprintf("%s -> %s:80: reached=%v, want %v (%v)", p.from, serviceVIP, err == nil, p.want, err))
				}
			}
			return len(fails) == 0
		}); err != nil {
			t.Fatalf("%s: %v: %v", what, err, fails)
		}
	}
	check("no policy", []probe{{Pod("x", "b"), true}, {Pod("y", "a"), true}, {Pod("x", "c"), true}, {World(), true}})
	pol := netpol("x", "a-from-b", labels("pod", "a"), ingressRules(from(podsWhere(labels("pod", "b")))))
	admitted := step{name: "x/a admits pod=b", policies: policies(pol), expect: func(e *Expectation) {
		e.DenyIngressTo(Pods(Pod("x", "a"))).AllowIngressTo(Pods(Pod("x", "a")), Pods(Pod("x", "b")))
	}}
	f.step(t, admitted, f.expected(admitted))
	check("through the VIP", []probe{{Pod("x", "b"), true}, {Pod("y", "b"), false}, {Pod("y", "a"), false}, {Pod("x", "c"), false}, {World(), false}})
}

const dnatTable = "policy-test-svc"

// addDNAT makes the namespace translate vip:80/tcp to pod:80.
func addDNAT(netnsFd int, vip, pod netip.Addr) error {
	c, err := nftables.New(nftables.WithNetNSFd(netnsFd))
	if err != nil {
		return err
	}
	tbl := c.AddTable(&nftables.Table{Name: dnatTable, Family: nftables.TableFamilyIPv4})
	ch := c.AddChain(&nftables.Chain{Name: "prerouting", Table: tbl, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	v, p := vip.As4(), pod.As4()
	c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: v[:]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(80)},
		&expr.Immediate{Register: 1, Data: p[:]},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(80)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
	}})
	return c.Flush()
}

func delDNAT(netnsFd int) error {
	c, err := nftables.New(nftables.WithNetNSFd(netnsFd))
	if err != nil {
		return err
	}
	c.DelTable(&nftables.Table{Name: dnatTable, Family: nftables.TableFamilyIPv4})
	return c.Flush()
}

// pollUntil calls cond every round until it holds or d passes.
func pollUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(roundInterval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("not within %v", d)
		}
	}
	return nil
}
