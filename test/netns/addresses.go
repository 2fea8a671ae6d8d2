package netns

import (
	"fmt"
	"net"
	"net/netip"
)

// The address plan. Everything is in 198.18.0.0/15, the benchmarking range
// the project's tests use, and only inside namespaces a topology created:
//
//	198.18.0.0/24      underlay: the world bridge is .1, node i is .(10+i)
//	198.18.1.0/24      routed underlay (Options.RoutedNodes): the world's
//	                   second bridge is .1, node i is .(10+i); the world
//	                   forwards between the two subnets
//	198.18.128.0/17    cluster CIDR: node i's pod CIDR is 198.18.(128+i).0/24,
//	                   its kube-bridge (the pods' gateway) is .1 of it
//
// (Functions rather than package variables: values nobody can change.)

// MaxNodes is how many nodes the address plan has room for (pod CIDRs
// 198.18.128.0/24 to 198.18.255.0/24).
const MaxNodes = 128

// UnderlayCIDR is the nodes' shared network.
func UnderlayCIDR() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, 0}), 24)
}

// WorldIP is the world namespace's address on the underlay bridge.
func WorldIP() netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 0, 1}) }

// ClusterCIDR is the range every node's pod CIDR is carved from.
func ClusterCIDR() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 128, 0}), 17)
}

// RoutedCIDR is the second underlay subnet, of the routed nodes
// (Options.RoutedNodes).
func RoutedCIDR() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 1, 0}), 24)
}

// RoutedWorldIP is the world's address on the routed subnet: the routed
// nodes' gateway to the underlay, and the underlay nodes' to them.
func RoutedWorldIP() netip.Addr { return netip.AddrFrom4([4]byte{198, 18, 1, 1}) }

// nodeIP is node i's underlay address (on the routed subnet when routed).
func nodeIP(i int, routed bool) netip.Addr {
	if routed {
		return netip.AddrFrom4([4]byte{198, 18, 1, byte(10 + i)})
	}
	return netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + i)})
}

// nodePodCIDR is node i's pod CIDR.
func nodePodCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(128 + i), 0}), 24)
}

// Fixed, locally administered MACs for the bridges: a bridge without a MAC
// of its own takes the lowest MAC of its ports, which changes as pods come
// and go and leaves stale neighbour entries behind (PITFALLS.md).
func worldBridgeMAC() net.HardwareAddr  { return net.HardwareAddr{0x02, 0x6e, 0x6e, 0xff, 0x00, 0x01} }
func routedBridgeMAC() net.HardwareAddr { return net.HardwareAddr{0x02, 0x6e, 0x6e, 0xff, 0x00, 0x02} }
func nodeBridgeMAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x6e, 0x6e, 0x00, byte(i), 0x01}
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func addrIPNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

func checkNodes(n, routed int) error {
	if n < 1 || n > MaxNodes {
		return fmt.Errorf("netns: Nodes = %d: want 1 to %d", n, MaxNodes)
	}
	if routed < 0 || routed > n {
		return fmt.Errorf("netns: RoutedNodes = %d: want 0 to Nodes (%d)", routed, n)
	}
	return nil
}
