package controller

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/coord"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/routerd/internal/desired"
	"github.com/nodenet/nodenet/routerd/internal/model"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
)

// Address plan: node n0 198.18.0.10 (pods 198.18.128.0/24) and n1
// 198.18.0.11 (198.18.129.0/24) on 198.18.0.0/24; n2 198.18.1.12
// (198.18.130.0/24) on another subnet.

func testNode(name, ip, cidr string, kv ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
	if cidr != "" {
		n.Spec.PodCIDRs = []string{cidr}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		n.Annotations[kv[i]] = kv[i+1]
	}
	return n
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

type harness struct {
	t       *testing.T
	c       *Controller
	speaker *fakeSpeaker
	routes  *fakeRoutes
	masq    *fakeMasq
	pn      *fakePodNet
	pub     *coord.Publisher
	events  *record.FakeRecorder
	now     time.Time
}

// newHarness starts a controller of node n0 among nodes (the three of the
// address plan when none); setup may change the config and the fakes
// before Start.
func newHarness(t *testing.T, setup func(*harness, *Config), objs ...runtime.Object) *harness {
	if len(objs) == 0 {
		objs = []runtime.Object{testNode("n0", "198.18.0.10", "198.18.128.0/24"), testNode("n1", "198.18.0.11", "198.18.129.0/24"),
			testNode("n2", "198.18.1.12", "198.18.130.0/24")}
	}
	h := &harness{t: t, speaker: newFakeSpeaker(), routes: &fakeRoutes{}, masq: &fakeMasq{},
		pn: &fakePodNet{subnets: []model.Subnet{{Prefix: pfx("198.18.0.0/24"), Link: "eth0"}}, mtu: 1500, bridge: true}, events: record.NewFakeRecorder(100),
		now: time.Unix(1_800_000_000, 0)}
	cfg := DefaultConfig()
	cfg.Namespace = ""
	log := zap.NewNop()
	h.pub = coord.NewPublisher(log, "routerd", "test")
	deps := daemon.Deps{Log: log, Config: config.Common{NodeName: "n0"}, Publisher: h.pub,
		Trigger: func() {}, Metrics: prometheus.NewRegistry(), Healthy: func() bool { return true }}
	if setup != nil {
		setup(h, cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.c = New(deps, cfg, fake.NewClientset(objs...), Kernel{Speaker: h.speaker, Routes: h.routes, Masquerade: h.masq, PodNetwork: h.pn}, h.events)
	h.c.now = func() time.Time { return h.now }
	if setup != nil {
		setup(h, cfg) // again: peer facts are read from the controller
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := h.c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) sync() {
	h.t.Helper()
	if err := h.c.Sync(context.Background(), false); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) allPeersIn() {
	h.speaker.states = nil
	for _, p := range h.speaker.peers {
		h.speaker.states = append(h.speaker.states, model.PeerState{Peer: p, State: "established", GracefulRestart: true, EndOfRIB: true})
	}
}

func TestSyncProgramsTheNode(t *testing.T) {
	h := newHarness(t, nil)
	h.sync()
	g := h.speaker.starts
	if len(g) != 1 || g[0].RouterID != ip("198.18.0.10") || g[0].ASN != 64512 || g[0].ListenPort != 179 || g[0].GracefulRestart != 120*time.Second {
		t.Fatalf("speaker started with %+v", g)
	}
	var peers []string
	for _, p := range h.speaker.peers {
		peers = append(peers, p.Name)
	}
	if !slices.Equal(peers, []string{"n1", "n2"}) {
		t.Errorf("peers %q", peers)
	}
	if len(h.speaker.adverts) != 1 || h.speaker.adverts[0].Prefix != pfx("198.18.128.0/24") || h.speaker.nextHop != ip("198.18.0.10") {
		t.Errorf("advertised %+v via %s", h.speaker.adverts, h.speaker.nextHop)
	}
	if h.pn.bridgeMTU != 1480 || !slices.Equal(h.pn.cniWritten, []netip.Prefix{pfx("198.18.128.0/24")}) {
		t.Errorf("bridge MTU %d, CNI config for %v", h.pn.bridgeMTU, h.pn.cniWritten)
	}
	if !slices.Equal(h.masq.pods, []netip.Prefix{pfx("198.18.128.0/24")}) || len(h.masq.keep) != 4 {
		t.Errorf("masquerade from %v except to %v", h.masq.pods, h.masq.keep)
	}
	pn := h.pub.Facts().PodNetwork
	if pn.GetBgpReady() || !slices.Equal(pn.GetPodCidrs(), []string{"198.18.128.0/24"}) || pn.GetMtu() != 1480 ||
		pn.GetBridgeName() != "kube-bridge" || pn.GetCidrSource() != nodev1.PodCIDRSource_POD_CIDR_SOURCE_NODE_SPEC {
		t.Errorf("published %v", pn)
	}

	// The peers come up and send their routes.
	h.allPeersIn()
	h.speaker.paths = []model.Path{
		{Prefix: pfx("198.18.129.0/24"), NextHop: ip("198.18.0.11"), Peer: ip("198.18.0.11")},
		{Prefix: pfx("198.18.130.0/24"), NextHop: ip("198.18.1.12"), Peer: ip("198.18.1.12")},
	}
	h.sync()
	want := []model.Route{{Prefix: pfx("198.18.129.0/24"), NextHop: ip("198.18.0.11")},
		{Prefix: pfx("198.18.130.0/24"), NextHop: ip("198.18.1.12"), Tunnel: model.TunnelName(ip("198.18.1.12"))}}
	if !slices.Equal(h.routes.installed, want) || len(h.routes.tunnels) != 1 || h.routes.tunnels[0].MTU != 1480 {
		t.Errorf("routes %v tunnels %+v", h.routes.installed, h.routes.tunnels)
	}
	if !h.pub.Facts().PodNetwork.GetBgpReady() {
		t.Error("BGP not ready with every peer in")
	}
	if n := h.c.Counts(); n["established"] != 2 || n["routes"] != 2 || n["tunnels"] != 1 {
		t.Errorf("counts %v", n)
	}
	h.sync()
	if len(h.speaker.starts) != 1 {
		t.Errorf("the speaker was restarted with nothing changed: %+v", h.speaker.starts)
	}
}

// After a (re)start the speaker gets the node's prefixes before its
// peers: the first End-of-RIB a peer gets must follow all of them, or the
// peer withdraws those missing (package bgp, graceful restart).
func TestAdvertisementsBeforePeers(t *testing.T) {
	h := newHarness(t, nil)
	h.sync()
	h.sync()
	want := []string{"Start", "SetAdvertisements", "SetPeers", "SetAdvertisements", "SetPeers"}
	if !slices.Equal(h.speaker.calls, want) {
		t.Errorf("speaker calls %q, want %q", h.speaker.calls, want)
	}
}

func TestCNIConfigWaitsForFirewalld(t *testing.T) {
	var policy *nodev1.PolicyState
	setup := func(h *harness, _ *Config) {
		if h.c != nil {
			h.c.peerFacts["firewalld"] = func() coord.Facts { return coord.Facts{Known: policy != nil, PolicyState: policy} }
		}
	}
	h := newHarness(t, setup)
	h.sync()
	if h.pn.writes != 0 || h.c.Counts()["waitingForFirewalld"] != 1 {
		t.Fatalf("CNI config written (%d) before firewalld is in force", h.pn.writes)
	}
	policy = &nodev1.PolicyState{InForce: true}
	h.sync()
	if h.pn.writes != 1 || h.c.Counts()["waitingForFirewalld"] != 0 {
		t.Fatalf("CNI config not written (%d) once firewalld is in force", h.pn.writes)
	}
	// firewalld restarts: its new incarnation is not in force yet, the
	// config stays (the old table is still in force).
	policy = &nodev1.PolicyState{}
	h.sync()
	if h.pn.cniWritten == nil || h.pn.removes != 0 {
		t.Error("CNI config taken away while firewalld restarted")
	}
}

func TestAfterABootAnOldCNIConfigWaitsForFirewalld(t *testing.T) {
	h := newHarness(t, func(h *harness, _ *Config) {
		h.pn.bridge = false // nothing of the pod network survived
		h.pn.cniWritten = []netip.Prefix{pfx("198.18.128.0/24")}
		if h.c != nil {
			h.c.peerFacts["firewalld"] = func() coord.Facts { return coord.Facts{} }
		}
	})
	h.sync()
	if h.pn.cniWritten != nil || h.pn.removes != 1 {
		t.Errorf("the CNI config of before the boot stays while firewalld is not in force (removes %d)", h.pn.removes)
	}
}

func TestRestartKeepsTheRoutesFoundUntilThePeersAreIn(t *testing.T) {
	n1 := model.Route{Prefix: pfx("198.18.129.0/24"), NextHop: ip("198.18.0.11")}
	gone := model.Route{Prefix: pfx("198.18.131.0/24"), NextHop: ip("198.18.2.14"), Tunnel: model.TunnelName(ip("198.18.2.14"))}
	h := newHarness(t, func(h *harness, _ *Config) { h.routes.installed = []model.Route{n1, gone} })
	h.sync()
	if !slices.Equal(h.routes.installed, []model.Route{n1, gone}) || len(h.routes.tunnels) != 1 {
		t.Fatalf("routes found at start not kept: %v %v", h.routes.installed, h.routes.tunnels)
	}
	h.speaker.paths = []model.Path{{Prefix: n1.Prefix, NextHop: n1.NextHop, Peer: n1.NextHop}}
	h.now = h.now.Add(29 * time.Second)
	h.sync()
	if !slices.Contains(h.routes.installed, gone) {
		t.Fatal("a route found at start removed before the initial sync ended")
	}
	h.now = h.now.Add(time.Second)
	h.sync()
	if !slices.Equal(h.routes.installed, []model.Route{n1}) || len(h.routes.tunnels) != 0 {
		t.Errorf("after the initial sync: %v %v", h.routes.installed, h.routes.tunnels)
	}
}

func TestInitialSyncEndsWhenEveryPeerSentItsRoutes(t *testing.T) {
	gone := model.Route{Prefix: pfx("198.18.131.0/24"), NextHop: ip("198.18.0.14")}
	h := newHarness(t, func(h *harness, _ *Config) { h.routes.installed = []model.Route{gone} })
	h.sync()
	h.allPeersIn()
	h.sync()
	if len(h.routes.installed) != 0 || !h.pub.Facts().PodNetwork.GetBgpReady() {
		t.Errorf("routes %v, ready %v", h.routes.installed, h.pub.Facts().PodNetwork.GetBgpReady())
	}
}

func TestPodCIDRFromCNIConfigOrError(t *testing.T) {
	nodes := []runtime.Object{testNode("n0", "198.18.0.10", ""), testNode("n1", "198.18.0.11", "198.18.129.0/24")}
	h := newHarness(t, nil, nodes...)
	if err := h.c.Sync(context.Background(), false); err == nil || !strings.Contains(err.Error(), "no spec.podCIDRs") {
		t.Fatalf("sync without a pod CIDR: %v", err)
	}
	if h.pub.Facts().PodNetwork != nil || h.pn.writes != 0 || len(h.speaker.starts) != 0 {
		t.Error("something was done without a pod CIDR")
	}
	h.pn.cniCIDRs = []netip.Prefix{pfx("198.18.128.0/24")}
	h.sync()
	if pn := h.pub.Facts().PodNetwork; pn.GetCidrSource() != nodev1.PodCIDRSource_POD_CIDR_SOURCE_CNI_CONFIG {
		t.Errorf("published %v", pn)
	}
}

func TestServiceIPsFromProxyd(t *testing.T) {
	vips := map[coord.VIPKey]*nodev1.ServiceVIP{
		{IP: "198.19.0.1", Port: 80, Protocol: nodev1.Protocol_PROTOCOL_TCP}:     {Key: &nodev1.ServiceVIPKey{Ip: "198.19.0.1", Port: 80}, Kind: nodev1.VIPKind_VIP_KIND_CLUSTER_IP, Service: "a/web"},
		{IP: "198.19.1.1", Port: 80, Protocol: nodev1.Protocol_PROTOCOL_TCP}:     {Key: &nodev1.ServiceVIPKey{Ip: "198.19.1.1", Port: 80}, Kind: nodev1.VIPKind_VIP_KIND_LOAD_BALANCER, ExternalTrafficLocal: true, Service: "a/local"},
		{IP: "198.18.0.10", Port: 30080, Protocol: nodev1.Protocol_PROTOCOL_TCP}: {Key: &nodev1.ServiceVIPKey{Ip: "198.18.0.10", Port: 30080}, Kind: nodev1.VIPKind_VIP_KIND_NODE_PORT, Service: "a/web"},
	}
	h := newHarness(t, func(h *harness, cfg *Config) {
		cfg.AdvertiseClusterIP, cfg.AdvertiseLoadBalancerIP = true, true
		if h.c != nil {
			h.c.peerFacts["proxyd"] = func() coord.Facts { return coord.Facts{Known: true, VIPs: vips} }
		}
	})
	h.sync()
	var got []string
	for _, a := range h.speaker.adverts {
		got = append(got, a.Prefix.String())
	}
	if want := []string{"198.18.128.0/24", "198.19.0.1/32"}; !slices.Equal(got, want) {
		t.Errorf("advertised %q, want %q (the ETP Local VIP has no local endpoint)", got, want)
	}
}

func TestBadAnnotationIsEventedOnTheNode(t *testing.T) {
	nodes := []runtime.Object{testNode("n0", "198.18.0.10", "198.18.128.0/24"),
		testNode("n1", "198.18.0.11", "198.18.129.0/24", desired.AnnotationASN, "sixty-four")}
	h := newHarness(t, nil, nodes...)
	h.sync()
	select {
	case e := <-h.events.Events:
		if !strings.Contains(e, desired.ReasonBadAnnotation) {
			t.Errorf("event %q", e)
		}
	default:
		t.Error("no event for a bad ASN annotation")
	}
	if len(h.speaker.peers) != 1 || h.speaker.peers[0].ASN != 64512 {
		t.Errorf("peers %+v", h.speaker.peers)
	}
}

func TestStatusListsTheBGPPeers(t *testing.T) {
	h := newHarness(t, nil)
	h.sync()
	h.allPeersIn()
	h.speaker.states[0].Received, h.speaker.states[0].Accepted = 3, 2
	h.speaker.states[0].Password = "x"
	resp := &nodev1.GetResponse{}
	h.c.StatusDetails(context.Background(), resp)
	if len(resp.BgpPeers) != 2 {
		t.Fatalf("status peers %v", resp.BgpPeers)
	}
	p := resp.BgpPeers[0]
	if p.Name != "n1" || p.Address != "198.18.0.11" || p.State != "established" || p.Received != 3 || p.Accepted != 2 || !p.Md5 || !p.EndOfRib || p.Kind != "node" {
		t.Errorf("status peer %v", p)
	}
}

// Route syncs come by the thousand when peers send their tables: the
// bridge and the CNI config are only made again when they change, or on
// full syncs (which repair drift).
func TestPodNetworkOnlyWhenItChanges(t *testing.T) {
	h := newHarness(t, nil)
	h.sync()
	h.sync()
	if h.pn.ensures != 1 || h.pn.writes != 1 {
		t.Errorf("bridge ensured %d times, CNI config written %d times over two syncs", h.pn.ensures, h.pn.writes)
	}
	if err := h.c.Sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	if h.pn.ensures != 2 || h.pn.writes != 2 {
		t.Errorf("a full sync did not repair the pod network (%d, %d)", h.pn.ensures, h.pn.writes)
	}
	h.pn.mtu = 9000
	if err := h.c.Sync(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	h.sync()
	if h.pn.bridgeMTU != 8980 || h.pn.writes != 3 {
		t.Errorf("after an MTU change: bridge MTU %d, %d writes", h.pn.bridgeMTU, h.pn.writes)
	}
}
