package app

// `routerd routes` and `routerd peers` end to end in one process: a
// routerd daemon with its real controller over the fakes of its kernel
// parts (BGP speaker, routes, masquerade, pod network) and a fake API
// server serves them on its socket; the CLI asks and prints text or JSON,
// compared with the golden files in testdata/routes (go test -run
// TestRoutesAndPeersCommands -update rewrites them).
//
// Address plan: node-0 198.18.0.10 (pods 198.18.128.0/24) and node-1
// 198.18.0.11 (198.18.129.0/24) on 198.18.0.0/24 (eth0); node-2
// 198.18.1.12 (198.18.130.0/24) on another subnet, through IPIP; the
// external router 198.18.0.1 (AS 64500).

import (
	"flag"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/daemon/daemontest"
	"github.com/nodenet/nodenet/internal/testutil"
	"github.com/nodenet/nodenet/routerd/internal/bgp"
	"github.com/nodenet/nodenet/routerd/internal/controller"
	"github.com/nodenet/nodenet/routerd/internal/egress"
	"github.com/nodenet/nodenet/routerd/internal/model"
	"github.com/nodenet/nodenet/routerd/internal/routes"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/routes")

// memPodNet is a node with one link, eth0 on 198.18.0.0/24, and a bridge.
type memPodNet struct{}

func (memPodNet) BridgeExists() (bool, error)                      { return true, nil }
func (memPodNet) EnsureBridge([]netip.Prefix, int) (bool, error)   { return false, nil }
func (memPodNet) LinkMTU(netip.Addr) (int, error)                  { return 1500, nil }
func (memPodNet) CNIPodCIDRs() ([]netip.Prefix, error)             { return nil, nil }
func (memPodNet) WriteCNIConfig([]netip.Prefix, int) (bool, error) { return false, nil }
func (memPodNet) RemoveCNIConfig() error                           { return nil }
func (memPodNet) Subnets() ([]model.Subnet, error) {
	return []model.Subnet{{Prefix: netip.MustParsePrefix("198.18.0.0/24"), Link: "eth0"}}, nil
}

func routesObjects() []runtime.Object {
	node := func(name, ip, cidr string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDRs: []string{cidr}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
	}
	return []runtime.Object{
		node("node-0", "198.18.0.10", "198.18.128.0/24"),
		node("node-1", "198.18.0.11", "198.18.129.0/24"),
		node("node-2", "198.18.1.12", "198.18.130.0/24"),
	}
}

// startRouterd runs routerd's Spec over the fakes; the speaker is
// returned for the test to play the peers.
func startRouterd(t *testing.T, runDir string) (daemon.Spec, *bgp.Fake) {
	t.Helper()
	speaker := bgp.NewFake()
	spec := Spec()
	spec.NewController = func(deps daemon.Deps) (daemon.Controller, error) {
		cfg := controller.DefaultConfig()
		cfg.Namespace, cfg.Tunnel = "", "ipip"
		cfg.Peers = []string{"address=198.18.0.1 asn=64500"}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		k := controller.Kernel{Speaker: speaker, Routes: routeTable{routes.NewFake()},
			Masquerade: &masquerade{t: egress.NewFake()}, PodNetwork: memPodNet{}}
		return controller.New(deps, cfg, fake.NewClientset(routesObjects()...), k, nil), nil
	}
	daemontest.Start(t, spec, runDir)
	return spec, speaker
}

func TestRoutesAndPeersCommands(t *testing.T) {
	runDir := testutil.SocketDir(t)
	spec, speaker := startRouterd(t, runDir)
	path := func(p, nh, peer string) model.Path {
		return model.Path{Prefix: netip.MustParsePrefix(p), NextHop: netip.MustParseAddr(nh), Peer: netip.MustParseAddr(peer)}
	}
	// The peers' routes come once the speaker runs with its peers (a
	// start of the speaker drops what it learned before).
	testutil.Eventually(t, 15*time.Second, "routerd's speaker with its 3 peers", nil, func() bool {
		_, running := speaker.Running()
		return running && len(speaker.ConfiguredPeers()) == 3
	})
	speaker.LearnPath(path("198.18.129.0/24", "198.18.0.11", "198.18.0.11"))
	speaker.LearnPath(path("198.18.130.0/24", "198.18.1.12", "198.18.1.12"))
	speaker.LearnPath(path("198.19.0.5/32", "198.18.0.11", "198.18.0.11"))
	speaker.LearnPath(path("198.18.200.0/24", "198.18.0.1", "198.18.0.1"))
	speaker.LearnPath(path("198.18.201.0/24", "198.18.7.1", "198.18.0.1"))
	for _, st := range []model.PeerState{
		{Peer: model.Peer{Address: netip.MustParseAddr("198.18.0.11")}, State: "established", GracefulRestart: true, EndOfRIB: true, Received: 2, Accepted: 2, Advertised: 1},
		{Peer: model.Peer{Address: netip.MustParseAddr("198.18.1.12")}, State: "established", GracefulRestart: true, EndOfRIB: true, Received: 1, Accepted: 1, Advertised: 1},
		{Peer: model.Peer{Address: netip.MustParseAddr("198.18.0.1")}, State: "established", Received: 2, Accepted: 2, Advertised: 1},
	} {
		speaker.SetPeerState(st)
	}
	// Every path has been through a sync once the table has all five.
	testutil.Eventually(t, 15*time.Second, "routerd's sync of the learned paths", nil, func() bool {
		res := daemontest.Run(spec, "routes", "--run-dir", runDir)
		return res.Code == daemon.ExitOK && strings.Count(res.Stdout, "\n198.") == 6 && strings.Contains(res.Stdout, "installed")
	})

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"routes", []string{"routes"}},
		{"routes-prefix", []string{"routes", "--prefix", "198.18.128.0/18"}},
		{"routes-address", []string{"routes", "--prefix", "198.19.0.5"}},
		{"peers", []string{"peers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range []string{"json", "text"} {
				res := daemontest.Run(spec, append(tc.args, "--run-dir", runDir, "-o", format)...)
				if res.Code != daemon.ExitOK || res.Stderr != "" {
					t.Fatalf("%s: exit %d, stderr %q", format, res.Code, res.Stderr)
				}
				name := tc.name + "." + map[string]string{"json": "json", "text": "txt"}[format]
				daemontest.Golden(t, filepath.Join("testdata", "routes", name), normalizeRouter(res.Stdout), *update)
			}
		})
	}

	// Bad input: a clear message and exit 2.
	for _, args := range [][]string{
		{"routes", "--prefix", "198.18.0"},
		{"routes", "--prefix", "nonsense"},
		{"peers", "-o", "yaml"},
	} {
		res := daemontest.Run(spec, append(args, "--run-dir", runDir)...)
		if res.Code != daemon.ExitUsage || !strings.HasPrefix(res.Stderr, "routerd "+args[0]+": ") || res.Stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, res.Code, res.Stdout, res.Stderr)
		}
	}
	// No routerd: a failure, not a usage error.
	if res := daemontest.Run(spec, "peers", "--run-dir", testutil.SocketDir(t), "--timeout", "200ms"); res.Code != daemon.ExitFailure {
		t.Errorf("without routerd: exit %d, stderr %q", res.Code, res.Stderr)
	}
}

// The sync's generation and time and the answer's time differ from run
// to run.
var (
	routerGen  = regexp.MustCompile(`"generation": "\d+"`)
	routerTime = regexp.MustCompile(`"time": "[^"]*"`)
)

func normalizeRouter(s string) string {
	s = routerGen.ReplaceAllString(s, `"generation": "N"`)
	s = routerTime.ReplaceAllString(s, `"time": "TIME"`)
	return daemontest.NormalizeSync(s)
}
