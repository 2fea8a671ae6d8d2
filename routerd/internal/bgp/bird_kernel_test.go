//go:build kernel

package bgp

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nodenet/nodenet/internal/testutil"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/routerd/internal/model"
)

// birdConfig fills testdata/bird.conf.tmpl.
type birdConfig struct {
	RouterID, Local, Neighbor string
	LocalAS, NeighborAS       uint32
	NeighborPort              uint16
	Password                  string
	Passive                   bool     // BIRD never dials: we must
	Routes                    []string // static routes BIRD announces
}

// bird is one BIRD process of a test.
type bird struct {
	sock string
	done <-chan error
	out  *testutil.SyncBuffer
}

// requireBIRD skips the test unless BIRD 2 is installed.
func requireBIRD(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(p); err != nil {
			tb.Skipf("%s not found: install Debian's bird2 (hack/install-deps.sh)", p)
		}
	}
}

// startBIRD runs BIRD in the foreground in namespace ns with c, its own
// config and control socket in a fresh directory, and returns once its
// control socket answers. It is killed at the end of the test.
func startBIRD(tb testing.TB, ns netns.NsHandle, c birdConfig) *bird {
	tb.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("testdata", "bird.conf.tmpl"))
	if err != nil {
		tb.Fatal(err)
	}
	dir := testutil.SocketDir(tb) // the control socket's path must be short
	var conf bytes.Buffer
	if err := tmpl.Execute(&conf, c); err != nil {
		tb.Fatal(err)
	}
	confPath := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	b := &bird{sock: filepath.Join(dir, "bird.ctl"), out: &testutil.SyncBuffer{}}
	cmd := exec.Command("bird", "-f", "-c", confPath, "-s", b.sock)
	cmd.Stdout, cmd.Stderr = b.out, b.out
	b.done = netnstest.Start(tb, ns, cmd)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("BIRD %s said:\n%s", c.Local, b.out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.run("show", "status"); err == nil {
			return b
		}
		select {
		case err := <-b.done:
			tb.Fatalf("BIRD %s exited: %v\n%s", c.Local, err, b.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("BIRD %s: no control socket after 10s\n%s", c.Local, b.out.String())
		}
	}
}

// run runs birdc with args on b's control socket. The socket is a path:
// birdc reaches it from any network namespace.
func (b *bird) run(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	return string(out), err
}

func (b *bird) birdc(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := b.run(args...)
	if err != nil {
		tb.Fatalf("birdc %v: %v\n%s", args, err, out)
	}
	return out
}

// hasRoute says whether b's table has prefix via nextHop. (birdc exits
// with 1 when the prefix is not there: "Network not found".)
func (b *bird) hasRoute(tb testing.TB, prefix, nextHop string) (bool, string) {
	tb.Helper()
	out, err := b.run("show", "route", prefix)
	if err != nil && !strings.Contains(out, "Network not found") {
		tb.Fatalf("birdc show route %s: %v\n%s", prefix, err, out)
	}
	return strings.Contains(out, prefix) && strings.Contains(out, "via "+nextHop+" "), out
}

// birdNetns makes BIRD's namespace, linked to ours by a veth pair: ours
// gets local, BIRD's side the addresses birds (all /24).
func birdNetns(tb testing.TB, link, local string, birds ...string) netns.NsHandle {
	tb.Helper()
	ns := netnstest.New(tb)
	ours, err := netns.Get()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ours.Close() })
	// A benchmark function runs more than once before its cleanups do:
	// the pair of an earlier run goes (with its other end) first.
	if l, err := netlink.LinkByName(link); err == nil {
		if err := netlink.LinkDel(l); err != nil {
			tb.Fatal(err)
		}
	}
	netnstest.Veth(tb, netnstest.End{NS: ours, Name: link, Addrs: []string{local}}, netnstest.End{NS: ns, Name: "eth0", Addrs: birds})
	return ns
}

// TestKernelBIRD peers our speaker with three BIRDs over eBGP with TCP MD5:
// one that never dials (we do), one that we cannot reach on its port (it
// dials us), and one with the wrong password, which must never come up
// while the others do. Routes must flow both ways, with graceful restart
// negotiated and End-of-RIB seen.
func TestKernelBIRD(t *testing.T) {
	requireNetns(t)
	requireBIRD(t)
	const us, passive, active, wrong = "198.18.4.1", "198.18.4.2", "198.18.4.3", "198.18.4.4"
	ns := birdNetns(t, "nnbird0", us+"/24", passive+"/24", active+"/24", wrong+"/24")

	g := globalAt(us)
	g.GracefulRestart = time.Minute
	s := startSpeaker(t, g)
	advertise(t, s, us, "198.19.40.0/24")
	external := func(addr string, asn uint32) model.Peer {
		return model.Peer{Address: netip.MustParseAddr(addr), ASN: asn, Password: "s3cret", Kind: model.ExternalPeer, Name: "bird-" + addr}
	}
	dialsUs := external(active, 65003)
	dialsUs.Port = 1179 // BIRD does not listen there: only its own dials can succeed
	setPeers(t, s, external(passive, 65002), dialsUs, external(wrong, 65004))

	birdAt := func(addr string, asn uint32, password string, passiveBIRD bool, route string) *bird {
		return startBIRD(t, ns, birdConfig{RouterID: addr, Local: addr, LocalAS: asn, Neighbor: us, NeighborAS: testASN,
			NeighborPort: 179, Password: password, Passive: passiveBIRD, Routes: []string{route}})
	}
	start := time.Now()
	b1 := birdAt(passive, 65002, "s3cret", true, "198.19.42.0/24")
	b2 := birdAt(active, 65003, "s3cret", false, "198.19.43.0/24")
	b3 := birdAt(wrong, 65004, "wrong", false, "198.19.44.0/24")

	wantPaths := []model.Path{path("198.19.42.0/24", passive, passive), path("198.19.43.0/24", active, active)}
	waitUntil(t, s, sessionTimeout+neverUp, "both good BIRDs up, End-of-RIB in, their routes learned, the wrong one never up", func() (bool, string) {
		if st, _ := peerStateOf(t, s, wrong); st.Established() {
			t.Fatalf("session with the wrong password established after %v", time.Since(start))
		}
		up, state := established(t, s, true, passive, active)()
		paths := s.Paths()
		return up && fmt.Sprint(paths) == fmt.Sprint(wantPaths) && time.Since(start) > neverUp,
			fmt.Sprintf("%s; paths %v", state, paths)
	})
	for _, a := range []string{passive, active} {
		st, _ := peerStateOf(t, s, a)
		// Advertised: our route only. The other BIRD's is not passed on:
		// a node is no transit between routers (export policy).
		if !st.GracefulRestart || st.Received != 1 || st.Accepted != 1 || st.Advertised != 1 {
			t.Errorf("state of BIRD %s: %+v", a, st)
		}
	}
	// BIRD's side: its session is up and it has our route, with our next
	// hop; the wrong-password BIRD has neither.
	for _, b := range []*bird{b1, b2} {
		if out := b.birdc(t, "show", "protocols", "nodenet"); !strings.Contains(out, "Established") {
			t.Errorf("BIRD's session not established:\n%s", out)
		}
		if ok, out := b.hasRoute(t, "198.19.40.0/24", us); !ok {
			t.Errorf("BIRD lacks our route via %s:\n%s", us, out)
		}
	}
	if out := b3.birdc(t, "show", "protocols", "nodenet"); strings.Contains(out, "Established") {
		t.Errorf("wrong-password BIRD established:\n%s", out)
	}
	if ok, out := b3.hasRoute(t, "198.19.40.0/24", us); ok {
		t.Errorf("wrong-password BIRD has our route:\n%s", out)
	}

	// A withdrawal each way.
	advertise(t, s, us)
	waitUntil(t, s, 5*time.Second, "BIRD loses our route", func() (bool, string) {
		ok, out := b1.hasRoute(t, "198.19.40.0/24", us)
		return !ok, out
	})
	b2.birdc(t, "disable", "announced")
	waitUntil(t, s, 5*time.Second, "we lose BIRD's route", havePaths(s, wantPaths[0]))
}
