package desired

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/routerd/internal/model"
	corev1 "k8s.io/api/core/v1"
)

// sessions lists the peers of node name as "address asn [client]".
func sessions(t *testing.T, in PeersInput) []string {
	t.Helper()
	res, err := Peers(in)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range res.Peers {
		s := fmt.Sprintf("%s %d", p.Address, p.ASN)
		if p.RRClient {
			s += " client"
		}
		out = append(out, s)
	}
	return out
}

func TestPeersTopologies(t *testing.T) {
	const srv, cli = AnnotationRRServer, AnnotationRRClient
	for _, tc := range []struct {
		name     string
		nodes    []*corev1.Node
		fullMesh bool
		want     map[string][]string // node → its sessions
	}{
		{"full mesh", []*corev1.Node{
			node("a", "198.18.0.10", ""), node("b", "198.18.0.11", ""), node("c", "198.18.0.12", "")},
			true, map[string][]string{
				"a": {"198.18.0.11 64512", "198.18.0.12 64512"},
				"b": {"198.18.0.10 64512", "198.18.0.12 64512"},
			}},
		{"full mesh off: nobody", []*corev1.Node{
			node("a", "198.18.0.10", ""), node("b", "198.18.0.11", "")},
			false, map[string][]string{"a": nil, "b": nil}},
		{"per-node ASN", []*corev1.Node{
			node("a", "198.18.0.10", "", AnnotationASN, "65001"), node("b", "198.18.0.11", "")},
			true, map[string][]string{"a": {"198.18.0.11 64512"}, "b": {"198.18.0.10 65001"}}},
		{"reflectors and clients", []*corev1.Node{
			node("r1", "198.18.0.1", "", srv, "1"), node("r2", "198.18.0.2", "", srv, "198.18.0.2"),
			node("c1", "198.18.0.11", "", cli, "1"), node("c2", "198.18.0.12", "", cli, "198.18.0.2"),
			node("p", "198.18.0.20", ""), node("q", "198.18.0.21", "")},
			true, map[string][]string{
				"r1": {"198.18.0.2 64512", "198.18.0.11 64512 client", "198.18.0.20 64512", "198.18.0.21 64512"},
				"r2": {"198.18.0.1 64512", "198.18.0.12 64512 client", "198.18.0.20 64512", "198.18.0.21 64512"},
				"c1": {"198.18.0.1 64512"},
				"c2": {"198.18.0.2 64512"},
				"p":  {"198.18.0.1 64512", "198.18.0.2 64512", "198.18.0.21 64512"},
			}},
		{"reflector, no full mesh", []*corev1.Node{
			node("r", "198.18.0.1", "", srv, "1"), node("p", "198.18.0.20", ""), node("q", "198.18.0.21", "")},
			false, map[string][]string{"p": {"198.18.0.1 64512"}, "r": {"198.18.0.20 64512", "198.18.0.21 64512"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for name, want := range tc.want {
				got := sessions(t, PeersInput{Node: name, Nodes: tc.nodes, ASN: 64512, FullMesh: tc.fullMesh})
				if !slices.Equal(got, want) {
					t.Errorf("%s: sessions %q, want %q", name, got, want)
				}
			}
			// Both ends agree: a has b exactly when b has a.
			has := map[string]bool{}
			ips := map[string]string{}
			for _, n := range tc.nodes {
				ip, _ := NodeIPv4(n)
				ips[ip.String()] = n.Name
			}
			for _, n := range tc.nodes {
				res, _ := Peers(PeersInput{Node: n.Name, Nodes: tc.nodes, ASN: 64512, FullMesh: tc.fullMesh})
				for _, p := range res.Peers {
					has[n.Name+">"+ips[p.Address.String()]] = true
				}
			}
			for k := range has {
				a, b, _ := strings.Cut(k, ">")
				if !has[b+">"+a] {
					t.Errorf("%s peers with %s, not the other way", a, b)
				}
			}
		})
	}
}

func TestPeersGlobal(t *testing.T) {
	nodes := []*corev1.Node{node("r", "198.18.0.1", "", AnnotationRRServer, "7", AnnotationASN, "65010"), node("b", "198.18.0.2", "")}
	res, err := Peers(PeersInput{Node: "r", Nodes: nodes, ASN: 64512, FullMesh: true, NodePort: 1790})
	if err != nil {
		t.Fatal(err)
	}
	if g := res.Global; g.RouterID != addr("198.18.0.1") || g.ASN != 65010 || g.ClusterID != addr("0.0.0.7") {
		t.Errorf("global %+v, want router id 198.18.0.1, AS 65010, cluster id 0.0.0.7", g)
	}
	if len(res.Peers) != 1 || res.Peers[0].Port != 1790 || res.Peers[0].Kind != model.NodePeer || res.Peers[0].Name != "b" {
		t.Errorf("peers %+v", res.Peers)
	}
	if _, err := Peers(PeersInput{Node: "gone", Nodes: nodes, ASN: 64512}); err == nil {
		t.Error("a missing local node is no error")
	}
	if _, err := Peers(PeersInput{Node: "x", Nodes: []*corev1.Node{node("x", "", "")}, ASN: 64512}); err == nil {
		t.Error("a local node without address is no error")
	}
}

// The IPv6 family is on the sessions only when a node of the cluster has
// an IPv6 pod CIDR.
func TestPeersIPv6OnlyInDualStack(t *testing.T) {
	v4 := []*corev1.Node{node("a", "198.18.0.1", "198.18.128.0/24"), node("b", "198.18.0.2", "198.18.129.0/24")}
	res, err := Peers(PeersInput{Node: "a", Nodes: v4, ASN: 64512, FullMesh: true})
	if err != nil || res.Global.IPv6 {
		t.Errorf("IPv4 pod CIDRs only: IPv6 %v, %v; want false", res.Global.IPv6, err)
	}
	dual := node("b", "198.18.0.2", "198.18.129.0/24")
	dual.Spec.PodCIDRs = append(dual.Spec.PodCIDRs, "2001:db8:1::/64")
	res, err = Peers(PeersInput{Node: "a", Nodes: []*corev1.Node{v4[0], dual}, ASN: 64512, FullMesh: true})
	if err != nil || !res.Global.IPv6 {
		t.Errorf("a node with an IPv6 pod CIDR: IPv6 %v, %v; want true", res.Global.IPv6, err)
	}
}

func TestPeersExternal(t *testing.T) {
	global, errs := ParsePeerSpecs("address=198.18.9.1 asn=65000 password-secret=tor hold-time=30 multihop=2 port=1179")
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	nodes := []*corev1.Node{
		node("a", "198.18.0.10", "", AnnotationPeers, "address=198.18.9.2,asn=65001; address=198.18.9.3 asn=65002 password-secret=missing; address=bad asn=1; address=198.18.0.11 asn=65003"),
		node("b", "198.18.0.11", ""),
	}
	res, err := Peers(PeersInput{Node: "a", Nodes: nodes, ASN: 64512, FullMesh: true, Peers: global, Passwords: map[string]string{"tor": "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []model.Peer{
		{Address: addr("198.18.0.11"), ASN: 64512, Kind: model.NodePeer, Name: "b"},
		{Address: addr("198.18.9.1"), ASN: 65000, Port: 1179, Password: "s3cret", HoldTime: 30 * time.Second, Multihop: 2, Kind: model.ExternalPeer, Name: "198.18.9.1"},
		{Address: addr("198.18.9.2"), ASN: 65001, Kind: model.ExternalPeer, Name: "198.18.9.2"},
	}
	if !slices.Equal(res.Peers, want) {
		t.Errorf("peers\n%+v\nwant\n%+v", res.Peers, want)
	}
	got := reasons(res.Problems)
	wantProblems := []string{"a:" + ReasonBadAnnotation, "a:" + ReasonNoPassword, "a:" + ReasonDuplicatePeer}
	if !slices.Equal(got, wantProblems) {
		t.Errorf("problems %q, want %q", got, wantProblems)
	}
}

func TestPeersBadAnnotationsAreSkipped(t *testing.T) {
	nodes := []*corev1.Node{
		node("a", "198.18.0.10", "", AnnotationASN, "not-a-number"),
		node("b", "198.18.0.11", "", AnnotationRRServer, "0.0.0.0"),
		node("c", "198.18.0.12", "", AnnotationRRServer, "1", AnnotationRRClient, "1"),
		node("d", "", ""),
	}
	res, err := Peers(PeersInput{Node: "a", Nodes: nodes, ASN: 64512, FullMesh: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Global.ASN != 64512 {
		t.Errorf("a bad ASN annotation gave AS %d, not the default", res.Global.ASN)
	}
	// b is a plain node (bad cluster id), c a reflector (both roles).
	got := sessions(t, PeersInput{Node: "a", Nodes: nodes, ASN: 64512, FullMesh: true})
	if want := []string{"198.18.0.11 64512", "198.18.0.12 64512"}; !slices.Equal(got, want) {
		t.Errorf("sessions %q, want %q", got, want)
	}
	want := []string{"a:" + ReasonBadAnnotation, "b:" + ReasonBadAnnotation, "c:" + ReasonBadAnnotation, "d:" + ReasonNoNodeIP}
	if got := reasons(res.Problems); !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}
}

func TestParsePeerSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want PeerSpec
		err  string
	}{
		{in: "address=198.18.9.1 asn=65000", want: PeerSpec{Address: addr("198.18.9.1"), ASN: 65000}},
		{in: "address=2001:2::1,asn=1.10,hold-time=1m30s", want: PeerSpec{Address: addr("2001:2::1"), ASN: 65546, HoldTime: 90 * time.Second}},
		{in: "address=::ffff:198.18.9.1 asn=4200000000", want: PeerSpec{Address: addr("198.18.9.1"), ASN: 4200000000}},
		{in: "address=198.18.9.1", err: "no asn"},
		{in: "asn=65000", err: "no address"},
		{in: "address=198.18.9.1 asn=65000 colour=blue", err: "unknown option"},
		{in: "address=198.18.9.1 asn=65000 asn=65001", err: "twice"},
		{in: "address=198.18.9 asn=65000", err: "address="},
		{in: "address=198.18.9.1 asn=0", err: "reserved"},
		{in: "address=198.18.9.1 asn=65535", err: "reserved"},
		{in: "address=198.18.9.1 asn=4294967296", err: "not an AS"},
		{in: "address=198.18.9.1 asn=65000 port=0", err: "port"},
		{in: "address=198.18.9.1 asn=65000 port=70000", err: "port"},
		{in: "address=198.18.9.1 asn=65000 hold-time=2", err: "hold time"},
		{in: "address=198.18.9.1 asn=65000 hold-time=1.5s", err: "hold time"},
		{in: "address=198.18.9.1 asn=65000 multihop=256", err: "multihop"},
		{in: "address=198.18.9.1 asn=65000 multihop", err: "not key=value"},
		{in: "address=224.0.0.1 asn=65000", err: "unicast"},
	} {
		got, err := ParsePeerSpec(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	specs, errs := ParsePeerSpecs("address=198.18.9.1 asn=1;\n\naddress=x asn=2\naddress=198.18.9.3 asn=3;")
	if len(specs) != 2 || len(errs) != 1 {
		t.Errorf("specs %+v errors %v", specs, errs)
	}
}

func FuzzParsePeerSpecs(f *testing.F) {
	f.Add("address=198.18.9.1 asn=65000 password-secret=x hold-time=90s multihop=2 port=179")
	f.Add("address=2001:2::1,asn=1.10;address=x")
	f.Fuzz(func(t *testing.T, s string) {
		specs, _ := ParsePeerSpecs(s)
		for _, p := range specs {
			if !p.Address.IsValid() || p.ASN == 0 {
				t.Fatalf("accepted %+v from %q", p, s)
			}
		}
	})
}
