//go:build e2eguest

package proxyd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	mnl "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/test/netns"
)

// node0's kernel state, read through netlink with libraries (nothing
// proxyd's): IPVS, the routes of the local table that no address made
// (proxyd's VIP routes are protocol 79 there), and every nftables table
// with its chains, rules (with their handles: a rule written anew gets a
// new one), sets and elements.

// ipvsClient opens IPVS in ns.
func ipvsClient(t *testing.T, ns *netns.NetNS) ipvs.Client {
	t.Helper()
	var c ipvs.Client
	if err := ns.Do(func() (err error) {
		c, err = ipvs.New() // its netlink socket stays in ns
		if err == nil {
			_, err = c.Info()
		}
		return err
	}); err != nil {
		t.Fatalf("IPVS in %s: %v (this needs the VM's kernel)", ns.Name, err)
	}
	t.Cleanup(func() {
		if cl, ok := c.(io.Closer); ok {
			_ = cl.Close()
		}
	})
	return c
}

// services lists node0's virtual services. github.com/cloudflare/ipvs
// answers an empty dump with os.ErrNotExist itself.
func (e *env) services() ([]ipvs.ServiceExtended, error) {
	svcs, err := e.ipvs.Services()
	if err == os.ErrNotExist { //nolint:errorlint // the library's own value, see above
		return nil, nil
	}
	return svcs, err
}

// dests lists a virtual service's real servers (see services).
func (e *env) dests(s ipvs.Service) ([]ipvs.DestinationExtended, error) {
	dests, err := e.ipvs.Destinations(s)
	if err == os.ErrNotExist { //nolint:errorlint // the library's own value
		return nil, nil
	}
	return dests, err
}

// waitDests waits until the virtual service of a Service's ClusterIP has
// exactly the real servers want (address → weight).
func (e *env) waitDests(t *testing.T, svc string, want map[netip.AddrPort]uint32, persistence uint32) {
	t.Helper()
	e.waitVS(t, e.vip(svc), want, persistence)
}

// waitVS waits until node0's virtual service vs (TCP) exists, is
// persistent for persistence seconds (0: not persistent) and has exactly
// the real servers want (address → weight), all masquerading.
func (e *env) waitVS(t *testing.T, vs netip.AddrPort, want map[netip.AddrPort]uint32, persistence uint32) {
	t.Helper()
	waitFor(t, convergeTimeout, fmt.Sprintf("IPVS %s with real servers %v", vs, want), func() (bool, string) {
		got, err := e.virtualService(vs)
		if err != nil {
			return false, err.Error()
		}
		ok := got.masquerading && maps.Equal(got.dests, want) && got.persistent == (persistence > 0) && (!got.persistent || got.timeout == persistence)
		return ok, fmt.Sprintf("real servers %v, persistent %v (timeout %d)", got.dests, got.persistent, got.timeout)
	})
}

// vsState is a virtual service as node0's IPVS has it.
type vsState struct {
	dests        map[netip.AddrPort]uint32 // real server → weight
	masquerading bool                      // every real server
	persistent   bool
	timeout      uint32
}

// virtualService reads node0's TCP virtual service vs.
func (e *env) virtualService(vs netip.AddrPort) (vsState, error) {
	svcs, err := e.services()
	if err != nil {
		return vsState{}, err
	}
	for _, s := range svcs {
		if s.Address != vs.Addr() || s.Port != vs.Port() || s.Protocol != ipvs.TCP || s.FWMark != 0 {
			continue
		}
		dests, err := e.dests(s.Service)
		if err != nil {
			return vsState{}, err
		}
		st := vsState{dests: map[netip.AddrPort]uint32{}, masquerading: true,
			persistent: s.Flags&ipvs.ServicePersistent != 0, timeout: s.Timeout}
		for _, d := range dests {
			st.dests[netip.AddrPortFrom(d.Address, d.Port)] = d.Weight
			st.masquerading = st.masquerading && d.FwdMethod == ipvs.Masquerade
		}
		return st, nil
	}
	return vsState{}, fmt.Errorf("no virtual service %s", vs)
}

// vsConnections is the connection count of every virtual service.
func (e *env) vsConnections(t *testing.T) map[string]uint64 {
	t.Helper()
	svcs, err := e.services()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, s := range svcs {
		out[vsName(s.Service)] = s.Stats64.Connections
	}
	return out
}

func vsName(s ipvs.Service) string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(s.Address, s.Port), strings.ToLower(s.Protocol.String()))
}

// snapshot is node0's kernel state as sorted lines of text.
type snapshot []string

func (e *env) snapshot(t *testing.T) snapshot {
	t.Helper()
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }

	svcs, err := e.services()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		name := vsName(s.Service)
		add("ipvs %s fwmark=%d sched=%s flags=%#x timeout=%d netmask=%s", name, s.FWMark, s.Scheduler, uint32(s.Flags), s.Timeout, s.Netmask)
		dests, err := e.dests(s.Service)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dests {
			add("ipvs %s -> %s fwd=%d weight=%d", name, netip.AddrPortFrom(d.Address, d.Port), d.FwdMethod, d.Weight)
		}
	}

	routes, err := e.n0.Netlink().RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_LOCAL}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_KERNEL {
			continue // an address's own route: the kernel's, not proxyd's
		}
		add("route table=%d type=%d dst=%s proto=%d metric=%d scope=%d dev=%d", r.Table, r.Type, r.Dst, r.Protocol, r.Priority, r.Scope, r.LinkIndex)
	}

	nft, err := nftables.New(nftables.WithNetNSFd(e.n0.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := nft.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := nft.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		tn := fmt.Sprintf("%d/%s", tb.Family, tb.Name)
		add("nft table %s flags=%#x", tn, tb.Flags)
		for _, c := range chains {
			if c.Table.Name != tb.Name || c.Table.Family != tb.Family {
				continue
			}
			add("nft chain %s %s %s", tn, c.Name, chainSpec(c))
			rules, err := nft.GetRules(tb, c)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rules {
				add("nft rule %s %s handle=%d exprs=%d userdata=%q", tn, c.Name, r.Handle, len(r.Exprs), r.UserData)
			}
		}
		sets, err := nft.GetSets(tb)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sets {
			add("nft set %s %s key=%s data=%s interval=%v concat=%v map=%v", tn, s.Name, s.KeyType.Name, s.DataType.Name, s.Interval, s.Concatenation, s.IsMap)
			elems, err := nft.GetSetElements(s)
			if err != nil {
				t.Fatal(err)
			}
			for _, el := range elems {
				add("nft element %s %s key=%x keyend=%x end=%v val=%x", tn, s.Name, el.Key, el.KeyEnd, el.IntervalEnd, el.Val)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

func chainSpec(c *nftables.Chain) string {
	var b strings.Builder
	fmt.Fprintf(&b, "type=%s", c.Type)
	if c.Hooknum != nil {
		fmt.Fprintf(&b, " hook=%d", *c.Hooknum)
	}
	if c.Priority != nil {
		fmt.Fprintf(&b, " prio=%d", *c.Priority)
	}
	if c.Policy != nil {
		fmt.Fprintf(&b, " policy=%d", *c.Policy)
	}
	return b.String()
}

// diffSnapshots lists the lines only in a ("-") and only in b ("+"); ""
// when they are the same.
func diffSnapshots(a, b snapshot) string {
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// addForeignState puts into node0 what belongs to someone else, which
// proxyd must neither adopt nor remove: IPVS services on a node address
// outside the NodePort range and on an address proxyd has no route for,
// a local route of another protocol, an nftables table.
func (e *env) addForeignState(t *testing.T) {
	t.Helper()
	host := netmask.MaskFrom(32, 32)
	onNode := ipvs.Service{Address: e.n0.IP, Port: 8081, Protocol: ipvs.TCP, Family: ipvs.INET, Scheduler: "wlc", Netmask: host}
	elsewhere := ipvs.Service{Address: netip.MustParseAddr("198.18.0.200"), Port: 80, Protocol: ipvs.TCP, Family: ipvs.INET, Scheduler: "rr", Netmask: host}
	for _, s := range []ipvs.Service{onNode, elsewhere} {
		if err := e.ipvs.CreateService(s); err != nil {
			t.Fatalf("foreign IPVS service %s: %v", vsName(s), err)
		}
	}
	if err := e.ipvs.CreateDestination(onNode, ipvs.Destination{Address: netip.MustParseAddr("198.18.129.250"), Port: 8081,
		Family: ipvs.INET, FwdMethod: ipvs.Masquerade, Weight: 3}); err != nil {
		t.Fatalf("foreign real server: %v", err)
	}

	lo, err := e.n0.Netlink().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.n0.Netlink().RouteAdd(&netlink.Route{
		Dst: &net.IPNet{IP: net.IPv4(198, 18, 0, 200).To4(), Mask: net.CIDRMask(32, 32)}, Type: unix.RTN_LOCAL,
		Table: unix.RT_TABLE_LOCAL, Protocol: unix.RTPROT_STATIC, Scope: netlink.SCOPE_HOST, LinkIndex: lo.Attrs().Index,
	}); err != nil {
		t.Fatalf("foreign local route: %v", err)
	}

	nft, err := nftables.New(nftables.WithNetNSFd(e.n0.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tb := nft.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: "foreign"})
	accept := nftables.ChainPolicyAccept
	ch := nft.AddChain(&nftables.Chain{Name: "input", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	nft.AddRule(&nftables.Rule{Table: tb, Chain: ch, Exprs: []expr.Any{&expr.Counter{}}})
	if err := nft.Flush(); err != nil {
		t.Fatalf("foreign nftables table: %v", err)
	}
}

// nftGeneration is the nftables ruleset generation of node0's namespace,
// which every committed transaction (anyone's, any table) increments: an
// unchanged generation proves nothing was written to nftables.
func (e *env) nftGeneration(t *testing.T) uint32 {
	t.Helper()
	c, err := mnl.Dial(unix.NETLINK_NETFILTER, &mnl.Config{NetNS: e.n0.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, err := c.Execute(mnl.Message{
		Header: mnl.Header{Type: mnl.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN), Flags: mnl.Request},
		Data:   []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}, // struct nfgenmsg
	})
	if err != nil {
		t.Fatalf("nftables generation: %v", err)
	}
	for _, m := range msgs {
		if len(m.Data) < 4 {
			continue
		}
		ad, err := mnl.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == unix.NFTA_GEN_ID {
				return ad.Uint32()
			}
		}
	}
	t.Fatal("nftables generation: no NFTA_GEN_ID in the answer")
	return 0
}

// watchRoutes records every route change in node0 (any table, both
// families) until the returned function is called, which returns them.
func (e *env) watchRoutes(t *testing.T) (stop func() []string) {
	t.Helper()
	c, err := mnl.Dial(unix.NETLINK_ROUTE, &mnl.Config{NetNS: e.n0.Fd(), Groups: unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE})
	if err != nil {
		t.Fatalf("route monitor: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() }) // when the test ends before stop
	return func() []string {
		defer c.Close()
		// The kernel queues a route's notification before the write that
		// made it returns: whatever happened is in the socket already.
		var seen []string
		for {
			if err := c.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			msgs, err := c.Receive()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return seen
			}
			if err != nil {
				t.Fatalf("route monitor: %v", err)
			}
			for _, m := range msgs {
				seen = append(seen, routeEvent(m))
			}
		}
	}
}

// routeEvent describes an RTM_NEWROUTE or RTM_DELROUTE notification.
func routeEvent(m mnl.Message) string {
	what := map[mnl.HeaderType]string{unix.RTM_NEWROUTE: "new", unix.RTM_DELROUTE: "deleted"}[m.Header.Type]
	if what == "" || len(m.Data) < unix.SizeofRtMsg {
		return fmt.Sprintf("netlink message type %d", m.Header.Type)
	}
	// struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags.
	family, dstLen, table, proto := m.Data[0], m.Data[1], uint32(m.Data[4]), m.Data[5]
	var dst []byte
	if ad, err := mnl.NewAttributeDecoder(m.Data[unix.SizeofRtMsg:]); err == nil {
		for ad.Next() {
			switch ad.Type() {
			case unix.RTA_DST:
				dst = ad.Bytes()
			case unix.RTA_TABLE:
				table = ad.Uint32()
			}
		}
	}
	a, _ := netip.AddrFromSlice(dst)
	return fmt.Sprintf("%s route family %d to %s/%d, table %d, protocol %d", what, family, a, dstLen, table, proto)
}

// waitFor polls cond until it holds; on timeout the test fails with cond's
// last explanation.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %s", what, timeout, state)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		}
	}
}
