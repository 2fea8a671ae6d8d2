//go:build e2eguest

package cluster

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/nodenet/nodenet/internal/testutil"

	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
)

// The observer outside the cluster: BIRD 2 (Debian's bird2; the VM's root
// is the host's) in the world namespace, a BGP peer of every node
// (routerd's --peer). It only listens: it exports nothing, and installs
// nothing in the world's kernel (no kernel protocol). The scenarios read
// its table with birdc to see which nodes advertise a prefix.
//
// It is an external (eBGP) peer of every node. routerd exports to external peers only what the node
// originates (its pod CIDR, the service IPs it serves), never what it
// learned from the other nodes, so BIRD's routes by next hop say exactly
// which node advertises what: the scenarios check it on the wire.
const (
	nodeASN = 64512
	// worldASN is BIRD's AS.
	worldASN = 65001
)

// birdConfig is BIRD's configuration (text/template over birdPeers):
// one session per node of the topology. ("rx" is a reserved word in
// BIRD's configuration: no names like that.)
const birdConfig = `log stderr all;
router id {{.Local}};

protocol device {
}
{{range .Nodes}}
protocol bgp {{.Name}} {
	local {{$.Local}} as {{$.LocalAS}};
	neighbor {{.Address}} as {{$.NodeAS}};
	# Retry quickly: the test waits for sessions with deadlines.
	connect delay time 1;
	connect retry time 2;
	error wait time 1, 5;
	ipv4 {
		import all;
		export none;
	};
}
{{end}}`

type birdPeers struct {
	Local           netip.Addr
	LocalAS, NodeAS uint32
	Nodes           []birdNode
}

type birdNode struct {
	Name    string
	Address netip.Addr
}

// bird is the BIRD process of the world.
type bird struct {
	birdcPath string
	sock      string
	done      chan struct{}
	out       *testutil.SyncBuffer
	names     map[netip.Addr]string // node by address (the next hops)
}

// birdPath finds a BIRD program, in PATH or in /usr/sbin (where Debian
// puts it, not always in a non-root PATH).
func birdPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found: install Debian's bird2 on the host (hack/install-deps.sh); the VM's root is the host's", name)
	}
	return p
}

// startBIRD runs BIRD in the world namespace with a session to each node
// of topo, and returns once its control socket answers. It is killed when
// t ends (before the topology goes: it started after it).
func startBIRD(t testing.TB, world *netns.World, nodes []*netns.Node) *bird {
	t.Helper()
	dir, err := os.MkdirTemp("", "nn-bird-") // the socket's path must be short
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cfg := birdPeers{Local: world.IP, LocalAS: worldASN, NodeAS: nodeASN}
	b := &bird{birdcPath: birdPath(t, "birdc"), sock: filepath.Join(dir, "bird.ctl"), done: make(chan struct{}), out: &testutil.SyncBuffer{}, names: map[netip.Addr]string{}}
	for _, n := range nodes {
		cfg.Nodes = append(cfg.Nodes, birdNode{Name: n.Name, Address: n.IP})
		b.names[n.IP] = n.Name
	}
	var conf bytes.Buffer
	if err := template.Must(template.New("bird").Parse(birdConfig)).Execute(&conf, cfg); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(birdPath(t, "bird"), "-f", "-c", confPath, "-s", b.sock)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	if err := world.Start(cmd); err != nil {
		t.Fatalf("start BIRD: %v", err)
	}
	go func() {
		_ = cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-b.done
		if t.Failed() {
			t.Logf("----- BIRD in the world said -----\n%s", b.out.String())
		}
	})
	harness.Eventually(t, 30*time.Second, pollInterval, "BIRD's control socket", func() (bool, string) {
		if b.exited() {
			t.Fatalf("BIRD exited:\n%s", b.out.String())
		}
		out, err := b.birdc("show", "status")
		return err == nil, out
	})
	return b
}

func (b *bird) exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// birdc runs birdc on BIRD's control socket (a path: reachable from the
// test's own namespace).
func (b *bird) birdc(args ...string) (string, error) {
	out, err := exec.Command(b.birdcPath, append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// routes is BIRD's table: for each prefix, the nodes (by next hop) that
// advertise it, sorted. Next hops that are no node are named by their
// address.
func (b *bird) routes() (map[netip.Prefix][]string, error) {
	out, err := b.birdc("show", "route")
	if err != nil {
		return nil, err
	}
	return parseBIRDRoutes(out, b.names)
}

// parseBIRDRoutes reads `birdc show route`:
//
//	Table master4:
//	198.19.0.10/32       unicast [node0 20:12:30.241] * (100) [AS64512i]
//		via 198.18.0.10 on underlay
//	                     unicast [node1 20:12:30.241] (100) [AS64512i]
//		via 198.18.0.11 on underlay
func parseBIRDRoutes(out string, names map[netip.Addr]string) (map[netip.Prefix][]string, error) {
	res := map[netip.Prefix][]string{}
	var cur netip.Prefix
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			if p, err := netip.ParsePrefix(f[0]); err == nil {
				cur = p
			}
			continue
		}
		if f[0] != "via" || len(f) < 2 || !cur.IsValid() {
			continue
		}
		hop, err := netip.ParseAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("next hop %q of %s: %v", f[1], cur, err)
		}
		name := names[hop]
		if name == "" {
			name = hop.String()
		}
		if !slices.Contains(res[cur], name) {
			res[cur] = append(res[cur], name)
			slices.Sort(res[cur])
		}
	}
	return res, nil
}

// advertisers is which nodes advertise prefix (sorted).
func (b *bird) advertisers(prefix netip.Prefix) ([]string, error) {
	rs, err := b.routes()
	if err != nil {
		return nil, err
	}
	return rs[prefix], nil
}

// waitAdvertisers waits until exactly the nodes of want (sorted) advertise
// prefix to BIRD.
func (b *bird) waitAdvertisers(t testing.TB, prefix netip.Prefix, want ...string) {
	t.Helper()
	harness.Eventually(t, convergeTimeout, pollInterval, fmt.Sprintf("BGP: %s advertised by exactly %v", prefix, want), func() (bool, string) {
		got, err := b.advertisers(prefix)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(got, want), fmt.Sprintf("advertised by %v", got)
	})
}

// holdAdvertisers checks, for window, that exactly the nodes of want
// advertise prefix: what a node must not do, it does not do for that
// long after the others did.
func (b *bird) holdAdvertisers(t testing.TB, prefix netip.Prefix, window time.Duration, want ...string) {
	t.Helper()
	deadline := time.Now().Add(window)
	polls := 0
	for {
		got, err := b.advertisers(prefix)
		if err != nil {
			t.Fatal(err)
		}
		polls++
		if !slices.Equal(got, want) {
			t.Fatalf("BGP: %s advertised by %v, want only %v (for %v)", prefix, got, want, window)
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-time.After(pollInterval):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
	t.Logf("BGP: %s advertised by exactly %v for %v (%d looks)", prefix, want, window, polls)
}

// waitEstablished waits until BIRD's sessions with the nodes are up.
func (b *bird) waitEstablished(t testing.TB, nodes ...*netns.Node) {
	t.Helper()
	harness.Eventually(t, startTimeout, pollInterval, "BIRD's sessions with the nodes established", func() (bool, string) {
		out, err := b.birdc("show", "protocols")
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nodes {
			if !birdEstablished(out, n.Name) {
				return false, out
			}
		}
		return true, ""
	})
}

// birdEstablished says whether `birdc show protocols` shows protocol name
// established.
func birdEstablished(out, name string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return strings.Contains(line, "Established")
		}
	}
	return false
}
