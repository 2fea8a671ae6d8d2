//go:build kernel

package netns

import (
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// FlushConntrack empties the conntrack table of its own namespace only;
// Topology.FlushConntrack empties every namespace of the topology.
func TestFlushConntrack(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{Nodes: 2})
	n0, n1 := topo.Node(0), topo.Node(1)
	// Entries made directly over netlink: no traffic or rules needed.
	addFlow := func(n *Node, sport uint16) {
		t.Helper()
		fwd := netlink.IPTuple{SrcIP: net.IPv4(198, 18, 128, 2), DstIP: net.IPv4(198, 18, 129, 2), Protocol: unix.IPPROTO_TCP, SrcPort: sport, DstPort: 80}
		rev := netlink.IPTuple{SrcIP: fwd.DstIP, DstIP: fwd.SrcIP, Protocol: unix.IPPROTO_TCP, SrcPort: 80, DstPort: sport}
		flow := &netlink.ConntrackFlow{FamilyType: unix.AF_INET, Forward: fwd, Reverse: rev, TimeOut: 300,
			ProtoInfo: &netlink.ProtoInfoTCP{State: nl.TCP_CONNTRACK_ESTABLISHED}}
		must(t, n.Netlink().ConntrackCreate(netlink.ConntrackTable, netlink.FAMILY_V4, flow))
	}
	count := func(n *Node) int {
		t.Helper()
		flows, err := n.Netlink().ConntrackTableList(netlink.ConntrackTable, netlink.FAMILY_V4)
		must(t, err)
		return len(flows)
	}
	addFlow(n0, 40000)
	addFlow(n0, 40001)
	addFlow(n1, 40000)
	if c0, c1 := count(n0), count(n1); c0 != 2 || c1 != 1 {
		t.Fatalf("conntrack entries %d, %d: want 2, 1", c0, c1)
	}
	must(t, n0.FlushConntrack())
	if c0, c1 := count(n0), count(n1); c0 != 0 || c1 != 1 {
		t.Fatalf("after flushing node0: %d, %d entries, want 0, 1", c0, c1)
	}
	must(t, topo.FlushConntrack())
	if c1 := count(n1); c1 != 0 {
		t.Fatalf("after flushing the topology: node1 has %d entries", c1)
	}
}
