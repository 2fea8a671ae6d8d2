package nft

import (
	"net/netip"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// Test address plan (unit and kernel tests): this node's pod CIDRs
// 198.18.128.0/24 and 2001:db8:80::/64 (IPv6 only as set contents, never
// on an interface); local pods 198.18.128.2 (.3, .4); a remote node's pods
// in 198.18.140.0/24; ipBlocks in 198.18.0.0/16.

// Groups and peers of the base Datapath.
const (
	groupWeb model.ID = 0x0000a001
	groupDB  model.ID = 0x0000a002
	peerWeb  model.ID = 0x0000b001 // the web pods
	peerApp  model.ID = 0x0000b002 // the app pods (one local, one remote)
	peerNet  model.ID = 0x0000c001 // an ipBlock: 198.18.0.0/24
)

var (
	inWeb = model.GroupKey{Direction: model.Ingress, ID: groupWeb}
	inDB  = model.GroupKey{Direction: model.Ingress, ID: groupDB}
	outDB = model.GroupKey{Direction: model.Egress, ID: groupDB}
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func tcp(port uint16) model.PortRange {
	return model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: port, PortTo: port}
}

func udp(port uint16) model.PortRange {
	return model.PortRange{ProtoFrom: 17, ProtoTo: 17, PortFrom: port, PortTo: port}
}

func pod(p model.ID, a string) model.PeerElem {
	return model.PeerElem{Peer: p, From: addr(a), To: addr(a)}
}

func block(p model.ID, from, to string) model.PeerElem {
	return model.PeerElem{Peer: p, From: addr(from), To: addr(to)}
}

// baseDatapath is a small node: two local IPv4 pods and one IPv6 pod,
// web (isolated for ingress) and db (isolated both ways), a remote app
// pod, an ipBlock.
func baseDatapath() *model.Datapath {
	d := model.NewDatapath()
	d.LocalCIDRs = []netip.Prefix{netip.MustParsePrefix("198.18.128.0/24"), netip.MustParsePrefix("2001:db8:80::/64")}
	for _, a := range []string{"198.18.128.2", "198.18.128.3", "2001:db8:80::2"} {
		d.KnownLocal[addr(a)] = struct{}{}
	}
	d.IngressGroup[addr("198.18.128.2")] = groupWeb
	d.IngressGroup[addr("2001:db8:80::2")] = groupWeb
	d.IngressGroup[addr("198.18.128.3")] = groupDB
	d.EgressGroup[addr("198.18.128.3")] = groupDB
	d.Chains[inWeb] = []model.Rule{
		{Peer: model.AnyPeer, Ports: udp(53)},
		{Peer: peerApp, Ports: tcp(8080)},
		{Peer: peerNet, Ports: model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: 8000, PortTo: 8999}},
	}
	d.Chains[inDB] = []model.Rule{{Peer: peerWeb, Ports: tcp(5432)}}
	d.Chains[outDB] = []model.Rule{{Peer: peerApp, Ports: model.AllTraffic}}
	for _, e := range []model.PeerElem{
		pod(peerWeb, "198.18.128.2"), pod(peerWeb, "2001:db8:80::2"),
		pod(peerApp, "198.18.128.3"), pod(peerApp, "198.18.140.7"),
		block(peerNet, "198.18.0.0", "198.18.0.255"),
	} {
		d.PeerElems[e] = struct{}{}
	}
	return d
}

func mustApply(t testing.TB, i Interface, d *model.Datapath) Result {
	t.Helper()
	res, err := i.Apply(d)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

func mustApplyDelta(t testing.TB, i Interface, d *model.Datapath, delta *model.Delta) Result {
	t.Helper()
	res, err := i.ApplyDelta(d, delta)
	if err != nil {
		t.Fatalf("ApplyDelta: %v", err)
	}
	return res
}

// Cluster scale (bigDatapath): group and peer ids.
func bigGroup(i int) model.ID { return model.ID(0x00200000 + i) }
func bigPeer(i int) model.ID  { return model.ID(0x00100000 + i) }

// bigAddr is the i-th pod address, from 198.18.0.0 on.
func bigAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
}

// bigDatapath is a node at cluster scale: pods pod addresses (every one
// in a peer of its "namespace", peers of them, round robin), the first
// groups of them local pods each isolated for ingress in a group of its
// own (every fourth also for egress). Each group's chain allows its
// namespace's peer on TCP 8080, the next peer on TCP 9000-9100, an ipBlock
// peer on TCP 443 and anyone on UDP 53; every pod is also in an "all
// pods" peer that the egress chains name.
func bigDatapath(pods, groups, peers int) *model.Datapath {
	d := model.NewDatapath()
	d.LocalCIDRs = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/18")}
	all := bigPeer(peers)
	ipBlock := bigPeer(peers + 1)
	d.PeerElems[block(ipBlock, "198.19.0.0", "198.19.127.255")] = struct{}{}
	d.PeerElems[block(ipBlock, "198.19.128.16", "198.19.255.255")] = struct{}{}
	for i := range pods {
		a := bigAddr(i)
		d.PeerElems[model.PeerElem{Peer: bigPeer(i % peers), From: a, To: a}] = struct{}{}
		d.PeerElems[model.PeerElem{Peer: all, From: a, To: a}] = struct{}{}
		if i < groups {
			d.KnownLocal[a] = struct{}{}
			g := bigGroup(i)
			d.IngressGroup[a] = g
			d.Chains[model.GroupKey{Direction: model.Ingress, ID: g}] = []model.Rule{
				{Peer: model.AnyPeer, Ports: udp(53)},
				{Peer: bigPeer(i % peers), Ports: tcp(8080)},
				{Peer: bigPeer((i + 1) % peers), Ports: model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: 9000, PortTo: 9100}},
				{Peer: ipBlock, Ports: tcp(443)},
			}
			if i%4 == 0 {
				d.EgressGroup[a] = g
				d.Chains[model.GroupKey{Direction: model.Egress, ID: g}] = []model.Rule{
					{Peer: model.AnyPeer, Ports: udp(53)},
					{Peer: all, Ports: model.AllTraffic},
				}
			}
		}
	}
	return d
}

// recreateWrites is the size of a transaction creating the table for d:
// three table messages, the fixed sets, chains and rules, the peer sets,
// the group chains and their rules, one message per set that has elements
// (the test Datapaths are small).
func recreateWrites(cfg Config, d *model.Datapath) int {
	log, _ := newLogConfig(cfg)
	rs := newRuleset(log)
	es, sets, chains := newState(d).content()
	n := 3 + len(rs.sets) + len(rs.chains) + rs.fixedRules() + len(sets) + len(chains)
	for _, rules := range chains {
		n += rs.groupRuleCount(rules)
	}
	for _, m := range es {
		if len(m) > 0 {
			n++
		}
	}
	return n
}
