package nft

import (
	"net/netip"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// Test address plan (unit and kernel tests): this node's pod CIDRs
// 198.18.128.0/24 and 2001:db8:80::/64 (IPv6 only as set contents, never
// on an interface); local pods 198.18.128.2 (.3, .4); a remote node's pods
// in 198.18.140.0/24; ipBlock regions in 198.18.0.0/16.

// Identities and groups of the base Datapath.
const (
	groupWeb  model.ID = 0x0000a001
	groupDB   model.ID = 0x0000a002
	identWeb  model.ID = 0x0000b001
	identApp  model.ID = 0x0000b002
	identNet  model.ID = 0x0000c001 // a region: 198.18.0.0/24
	identRest model.ID = 0x0000c002 // a region: the rest of 198.18.0.0/16
)

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func tcp(port uint16) model.PortRange {
	return model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: port, PortTo: port}
}

// baseDatapath is a small node: two local IPv4 pods and one IPv6 pod,
// web (isolated for ingress) and db (isolated both ways), a remote app pod,
// two regions.
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
	d.PodIdent[addr("198.18.128.2")] = identWeb
	d.PodIdent[addr("2001:db8:80::2")] = identWeb
	d.PodIdent[addr("198.18.128.3")] = identApp
	d.PodIdent[addr("198.18.140.7")] = identApp
	d.Regions = []model.Region{
		{From: addr("198.18.0.0"), To: addr("198.18.0.255"), Ident: identNet},
		{From: addr("198.18.1.0"), To: addr("198.18.255.255"), Ident: identRest},
	}
	d.IngressAllow[model.Allow{Group: groupWeb, Ident: identApp, Ports: tcp(8080)}] = struct{}{}
	d.IngressAllow[model.Allow{Group: groupWeb, Ident: identNet, Ports: model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: 8000, PortTo: 8999}}] = struct{}{}
	d.IngressAllow[model.Allow{Group: groupDB, Ident: identWeb, Ports: tcp(5432)}] = struct{}{}
	d.EgressAllow[model.Allow{Group: groupDB, Ident: identApp, Ports: model.AllTraffic}] = struct{}{}
	d.IngressAny[model.AnyAllow{Group: groupWeb, Ports: model.PortRange{ProtoFrom: 17, ProtoTo: 17, PortFrom: 53, PortTo: 53}}] = struct{}{}
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

// bigDatapath is a node at cluster scale: pods pod identities (addresses
// from 198.18.0.0 on, 500 distinct identities), the first groups of them
// local pods each isolated for ingress in a group of its own (every
// fourth also for egress), and allows allow elements spread over the
// groups (distinct identities per group, so none overlap), a region per
// /16 of the two, a rule without peers per group.
func bigDatapath(pods, groups, allows int) *model.Datapath {
	d := model.NewDatapath()
	d.LocalCIDRs = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/18")}
	for i := range pods {
		a := netip.AddrFrom4([4]byte{198, 18 + byte(i>>16), byte(i >> 8), byte(i)})
		d.PodIdent[a] = model.ID(0x00100000 + i%500)
		if i < groups {
			g := model.ID(0x00200000 + i)
			d.KnownLocal[a] = struct{}{}
			d.IngressGroup[a] = g
			if i%4 == 0 {
				d.EgressGroup[a] = g
			}
			d.IngressAny[model.AnyAllow{Group: g, Ports: tcp(9090)}] = struct{}{}
		}
	}
	for i := range allows {
		g := model.ID(0x00200000 + i%groups)
		ident := model.ID(0x00100000 + (i/groups)%500)
		port := uint16(1000 + i/(groups*500))
		d.IngressAllow[model.Allow{Group: g, Ident: ident, Ports: tcp(port)}] = struct{}{}
	}
	d.Regions = []model.Region{
		{From: addr("198.18.0.0"), To: addr("198.18.255.255"), Ident: 0x00300001},
		{From: addr("198.19.0.0"), To: addr("198.19.255.255"), Ident: 0x00300002},
	}
	return d
}
