//go:build e2eguest

package cluster

import (
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/cloudflare/ipvs"

	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
)

// The demo's view of the service proxy: node0's IPVS table, read over
// netlink as proxyd does (ipvsadm need not be installed) and printed the
// way ipvsadm -Ln does.

// showIPVS prints node0's IPVS table as `ipvsadm -Ln` does, once the
// Service's ClusterIP has a real server for each web pod.
func (d *demo) showIPVS(t *testing.T) {
	n0 := d.c.nodes[0]
	d.title("IPVS on node0",
		"proxyd makes every ClusterIP and NodePort (on each node address) an IPVS virtual service with the",
		"ready pods as real servers. Read in node0 over netlink (github.com/cloudflare/ipvs), printed as ipvsadm does:")
	var want []netip.AddrPort
	for _, b := range d.backends {
		want = append(want, podAddr(b))
	}
	slices.SortFunc(want, netip.AddrPort.Compare)
	var tab ipvsTable
	harness.Eventually(t, convergeTimeout, pollInterval, fmt.Sprintf("node0's IPVS: %s with real servers %v", vip(d.svc), want), func() (bool, string) {
		var err error
		if tab, err = readIPVS(n0.NetNS); err != nil {
			return false, err.Error()
		}
		got := tab.realServers(vip(d.svc))
		return slices.Equal(got, want), fmt.Sprintf("real servers %v", got)
	})
	fmt.Fprintf(d.w, "\n%s$ ipvsadm -Ln\n", n0.Name)
	tab.write(d.w)
}

// ipvsTable is a namespace's IPVS state.
type ipvsTable struct {
	info     ipvs.Info
	services []ipvsService
}

type ipvsService struct {
	ipvs.ServiceExtended
	dests []ipvs.DestinationExtended
}

// readIPVS reads ns's IPVS services and their real servers, sorted by
// address. The client's netlink socket belongs to the namespace of the
// thread that opens it, so all of it happens inside ns.
func readIPVS(ns *netns.NetNS) (ipvsTable, error) {
	var tab ipvsTable
	err := ns.Do(func() error {
		c, err := ipvs.New()
		if err != nil {
			return err
		}
		if cl, ok := c.(io.Closer); ok {
			defer cl.Close()
		}
		if tab.info, err = c.Info(); err != nil {
			return err
		}
		svcs, err := c.Services()
		// The library answers an empty dump with os.ErrNotExist itself.
		if err != nil && err != os.ErrNotExist { //nolint:errorlint // the library's own value
			return err
		}
		for _, s := range svcs {
			dests, err := c.Destinations(s.Service)
			if err != nil && err != os.ErrNotExist { //nolint:errorlint // the library's own value
				return err
			}
			slices.SortFunc(dests, func(a, b ipvs.DestinationExtended) int {
				return netip.AddrPortFrom(a.Address, a.Port).Compare(netip.AddrPortFrom(b.Address, b.Port))
			})
			tab.services = append(tab.services, ipvsService{ServiceExtended: s, dests: dests})
		}
		return nil
	})
	slices.SortFunc(tab.services, func(a, b ipvsService) int {
		return cmp.Or(netip.AddrPortFrom(a.Address, a.Port).Compare(netip.AddrPortFrom(b.Address, b.Port)),
			cmp.Compare(a.Protocol, b.Protocol))
	})
	return tab, err
}

// realServers are the real servers of the TCP virtual service vs.
func (tab ipvsTable) realServers(vs netip.AddrPort) []netip.AddrPort {
	var rs []netip.AddrPort
	for _, s := range tab.services {
		if s.Protocol == ipvs.TCP && netip.AddrPortFrom(s.Address, s.Port) == vs {
			for _, d := range s.dests {
				rs = append(rs, netip.AddrPortFrom(d.Address, d.Port))
			}
		}
	}
	return rs
}

// write prints the table in ipvsadm -Ln's layout.
func (tab ipvsTable) write(w io.Writer) {
	v := tab.info.Version
	fmt.Fprintf(w, "IP Virtual Server version %d.%d.%d (size=%d)\n", v[0], v[1], v[2], tab.info.ConnectionTableSize)
	fmt.Fprintln(w, "Prot LocalAddress:Port Scheduler Flags")
	fmt.Fprintln(w, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn")
	for _, s := range tab.services {
		line := fmt.Sprintf("%-4s %s %s", protoName(s.Protocol), netip.AddrPortFrom(s.Address, s.Port), s.Scheduler)
		if s.Flags&ipvs.ServicePersistent != 0 {
			line += fmt.Sprintf(" persistent %d", s.Timeout)
		}
		fmt.Fprintln(w, line)
		for _, d := range s.dests {
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %d\n", netip.AddrPortFrom(d.Address, d.Port),
				forwardName(d.FwdMethod), d.Weight, d.ActiveConnections, d.InactiveConnections)
		}
	}
}

func protoName(p ipvs.Protocol) string {
	switch p {
	case ipvs.TCP:
		return "TCP"
	case ipvs.UDP:
		return "UDP"
	case ipvs.SCTP:
		return "SCTP"
	}
	return fmt.Sprint(uint16(p))
}

func forwardName(f ipvs.ForwardType) string {
	switch f {
	case ipvs.Masquerade:
		return "Masq"
	case ipvs.Local:
		return "Local"
	case ipvs.Tunnel:
		return "Tunnel"
	case ipvs.DirectRoute:
		return "Route"
	}
	return fmt.Sprint(uint32(f))
}
