//go:build kernel

package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Two nodes routed to each other statically, a pod on each: TCP and UDP
// echo across the nodes answer from the remote pod and see the client
// pod's own address (nothing NATs pod-to-pod traffic).
func TestPodToPodAcrossNodes(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{Nodes: 2})
	n0, n1 := topo.Node(0), topo.Node(1)
	must(t, n0.AddRoute(n1.PodCIDR, n1.IP))
	must(t, n1.AddRoute(n0.PodCIDR, n0.IP))

	a := topo.AddPod(t, n0, "pod-a")
	b := topo.AddPod(t, n1, "pod-b")
	if !n0.PodCIDR.Contains(a.IP) || !n1.PodCIDR.Contains(b.IP) {
		t.Fatalf("pod addresses %s, %s: want them in %s and %s", a.IP, b.IP, n0.PodCIDR, n1.PodCIDR)
	}
	must(t, b.ServeTCP(8080))
	must(t, b.ServeUDP(8081))
	must(t, a.ServeTCP(8080))

	t.Run("tcp", func(t *testing.T) {
		ans, err := a.DialTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(b.IP, 8080))
		must(t, err)
		checkAnswer(t, ans, "tcp", "pod-b", a.IP)
		if ans.Destination != netip.AddrPortFrom(b.IP, 8080) {
			t.Errorf("destination %s: want %s:8080", ans.Destination, b.IP)
		}
		// And back the other way.
		ans, err = b.DialTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(a.IP, 8080))
		must(t, err)
		checkAnswer(t, ans, "tcp", "pod-a", b.IP)
	})
	t.Run("udp", func(t *testing.T) {
		ans, err := a.DialUDP(testCtx(t, 10*time.Second), netip.AddrPortFrom(b.IP, 8081))
		must(t, err)
		checkAnswer(t, ans, "udp", "pod-b", a.IP)
		if ans.Destination != netip.AddrPortFrom(b.IP, 8081) {
			t.Errorf("destination %s: want %s:8081", ans.Destination, b.IP)
		}
	})
	t.Run("sctp", func(t *testing.T) {
		err := b.ServeSCTP(8082)
		skipWithoutSCTP(t, err)
		must(t, err)
		ans, err := a.DialSCTP(testCtx(t, 10*time.Second), netip.AddrPortFrom(b.IP, 8082))
		must(t, err)
		checkAnswer(t, ans, "sctp", "pod-b", a.IP)
	})
	t.Run("long-lived session", func(t *testing.T) {
		s, err := a.OpenTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(b.IP, 8080))
		must(t, err)
		defer func() { _ = s.Close() }()
		var port uint16
		for i := range 3 {
			ans, err := s.Ask(testCtx(t, 10*time.Second))
			must(t, err)
			checkAnswer(t, ans, "tcp", "pod-b", a.IP)
			if i > 0 && ans.Source.Port() != port {
				t.Fatalf("ask %d came from port %d, want the session's %d", i, ans.Source.Port(), port)
			}
			port = ans.Source.Port()
		}
	})
	t.Run("no route, no answer", func(t *testing.T) {
		must(t, n0.DelRoute(n1.PodCIDR))
		defer func() { must(t, n0.AddRoute(n1.PodCIDR, n1.IP)) }()
		if ans, err := a.DialTCP(testCtx(t, 500*time.Millisecond), netip.AddrPortFrom(b.IP, 8080)); err == nil {
			t.Fatalf("answer %v without a route", ans)
		}
	})
}

// Deleting a pod runs CNI DEL (veth gone, address released) and removes its
// namespace; a pod of the same name can then be created again and is
// reachable at once, with the node's bridge MAC unchanged.
func TestPodRecreatedWithSameName(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{Nodes: 2})
	must(t, topo.RouteAllPodCIDRs())
	n0, n1 := topo.Node(0), topo.Node(1)
	client := topo.AddPod(t, n1, "client")
	neighbour := topo.AddPod(t, n0, "neighbour") // same node: talks over kube-bridge

	for round := range 3 {
		p := topo.AddPod(t, n0, "server")
		must(t, p.ServeTCP(80))
		for _, from := range []*Pod{client, neighbour} {
			ans, err := from.DialTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(p.IP, 80))
			if err != nil {
				t.Fatalf("round %d: %s to the re-created pod: %v", round, from.Name, err)
			}
			checkAnswer(t, ans, "tcp", "server", from.IP)
		}
		mac, err := n0.BridgeHardwareAddr()
		must(t, err)
		if mac.String() != n0.BridgeMAC.String() {
			t.Fatalf("round %d: kube-bridge MAC %s, want the fixed %s", round, mac, n0.BridgeMAC)
		}

		hostVeths := bridgePorts(t, n0)
		must(t, p.Delete())
		must(t, p.Delete()) // a no-op
		if topo.Pod("server") != nil {
			t.Fatal("deleted pod still listed")
		}
		if _, err := os.Stat(p.Path); !os.IsNotExist(err) {
			t.Fatalf("pod namespace pin %s after delete: %v", p.Path, err)
		}
		// CNI DEL: the bridge plugin removed the host veth, host-local
		// released the address.
		if got := bridgePorts(t, n0); len(got) != len(hostVeths)-1 {
			t.Fatalf("round %d: bridge ports %v after delete, before %v", round, got, hostVeths)
		}
		if _, err := os.Stat(filepath.Join(n0.IPAMDir, "nodenet", p.IP.String())); !os.IsNotExist(err) {
			t.Fatalf("round %d: host-local still holds %s: %v", round, p.IP, err)
		}
	}
}

// bridgePorts lists the links enslaved to the node's kube-bridge.
func bridgePorts(t *testing.T, n *Node) []string {
	t.Helper()
	br, err := n.Netlink().LinkByName(n.Bridge)
	must(t, err)
	links, err := n.Netlink().LinkList()
	must(t, err)
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	return ports
}

// A run that dies without tearing down (here: SIGKILL in the middle of a
// test, in a child process) leaves its namespaces pinned and its CNI state
// on disk; the next topology removes them because their owner is gone.
func TestCrashedRunLeftoversAreRemoved(t *testing.T) {
	t.Parallel()
	SkipUnlessRoot(t)
	stateDir := isolatedStateDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCrashingRun$", "-test.v")
	cmd.Env = append(os.Environ(), crashHelperEnv+"="+stateDir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper: want it killed by SIGKILL, got %v\n%s", err, out.Bytes())
	}
	m := regexp.MustCompile(`(?m)^RUNDIR=(.+)$`).FindSubmatch(out.Bytes())
	if m == nil {
		t.Fatalf("helper printed no RUNDIR:\n%s", out.Bytes())
	}
	runDir := string(m[1])

	// What the crash left: the run directory, its owner dead, namespaces
	// still pinned (world, node, pod), host-local state.
	o, err := readOwner(runDir)
	must(t, err)
	if o.alive() {
		t.Fatalf("owner %+v of the crashed run still alive", o)
	}
	pins, err := mountsUnder(runDir)
	must(t, err)
	if len(pins) != 3 {
		t.Fatalf("crashed run left pins %v, want world, node0 and pod-victim", pins)
	}
	ipam, _ := filepath.Glob(filepath.Join(runDir, "nodes", "node0", "host-local", "nodenet", "198.18.*"))
	if len(ipam) != 1 {
		t.Fatalf("crashed run left host-local allocations %v, want one", ipam)
	}

	// The next run in the same state dir cleans up before it builds.
	topo := New(t, Options{StateDir: stateDir})
	if _, err := os.Stat(runDir); !os.IsNotExist(err) {
		t.Fatalf("crashed run's directory %s still there: %v", runDir, err)
	}
	pins, err = mountsUnder(runDir)
	must(t, err)
	if len(pins) != 0 {
		t.Fatalf("crashed run's pins still mounted: %v", pins)
	}
	// And the new topology works.
	p := topo.AddPod(t, topo.Node(0), "after-crash")
	must(t, p.ServeTCP(80))
	ans, err := topo.Node(0).DialTCP(testCtx(t, 10*time.Second), netip.AddrPortFrom(p.IP, 80))
	must(t, err)
	checkAnswer(t, ans, "tcp", "after-crash", topo.Node(0).Gateway)
}

const crashHelperEnv = "NODENET_NETNS_CRASH_HELPER_STATE_DIR"

// TestHelperCrashingRun is the child process of
// TestCrashedRunLeftoversAreRemoved: it builds a topology with a serving
// pod and kills itself with SIGKILL, so nothing of its teardown runs.
func TestHelperCrashingRun(t *testing.T) {
	stateDir := os.Getenv(crashHelperEnv)
	if stateDir == "" {
		t.Skip("helper process of TestCrashedRunLeftoversAreRemoved (runs only when it starts it)")
	}
	topo, err := Create(Options{StateDir: stateDir, Label: t.Name()})
	must(t, err)
	p, err := topo.CreatePod(testCtx(t, time.Minute), topo.Node(0), "victim")
	must(t, err)
	must(t, p.ServeTCP(80))
	fmt.Printf("RUNDIR=%s\n", topo.Dir)
	must(t, syscall.Kill(os.Getpid(), syscall.SIGKILL))
	select {} // SIGKILL cannot be caught; this is never reached
}

// Leftovers made by hand: a run directory whose owner PID is dead and one
// whose PID was reused by another process are removed with their pinned
// namespaces; live runs' directories are kept.
func TestLeftoversOfDeadOwnersOnly(t *testing.T) {
	t.Parallel()
	SkipUnlessRoot(t)
	stateDir := isolatedStateDir(t)

	// A PID that is certainly dead: a child we started and reaped.
	child := exec.Command(os.Args[0], "-test.list=^$")
	must(t, child.Run())
	deadPID := child.ProcessState.Pid()

	self, err := selfOwner("live")
	must(t, err)
	reused := self
	reused.Start++ // same PID, another process start: the PID was reused
	dead := owner{PID: deadPID, Start: 1}

	mk := func(id string, o owner) string {
		dir, err := createRunDir(stateDir, id, o)
		must(t, err)
		must(t, os.Mkdir(filepath.Join(dir, "netns"), 0o755))
		ns, err := newNetNS("leftover", filepath.Join(dir, "netns", "node0"), false)
		must(t, err)
		// Forget the handles as a dead process would; only the pin stays.
		ns.nl.Close()
		must(t, ns.handle.Close())
		must(t, os.MkdirAll(filepath.Join(dir, "nodes", "node0", "host-local"), 0o755))
		return dir
	}
	deadDir := mk("dead01", dead)
	reusedDir := mk("reuse1", reused)
	liveDir := mk("live01", self)
	t.Cleanup(func() { _ = removeRunDir(liveDir) })
	ownerless := filepath.Join(stateDir, "nnt-noown1")
	must(t, os.Mkdir(ownerless, 0o755))
	unrelated := filepath.Join(stateDir, "keep-me")
	must(t, os.Mkdir(unrelated, 0o755))

	removed, err := RemoveLeftovers(stateDir)
	must(t, err)
	if want := []string{deadDir, ownerless, reusedDir}; strings.Join(slices.Sorted(slices.Values(removed)), " ") != strings.Join(slices.Sorted(slices.Values(want)), " ") {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, d := range []string{liveDir, unrelated} {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("%s removed: %v", d, err)
		}
	}
	pins, err := mountsUnder(stateDir)
	must(t, err)
	if len(pins) != 1 || !strings.HasPrefix(pins[0], liveDir+"/") {
		t.Fatalf("pins left: %v, want only the live run's", pins)
	}
}

// A node whose CNI config nobody has written yet cannot start pods
// ("network not ready", as a kubelet says); once the config appears, it can.
func TestNoCNIConfigMeansNetworkNotReady(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{NoCNIConfig: true})
	n := topo.Node(0)
	if _, err := topo.CreatePod(testCtx(t, time.Minute), n, "early"); err == nil || !strings.Contains(err.Error(), "network not ready") {
		t.Fatalf("pod without CNI config: err = %v, want network not ready", err)
	}
	if topo.Pod("early") != nil {
		t.Fatal("failed pod listed")
	}
	must(t, n.WriteCNIConfig())
	p := topo.AddPod(t, n, "early")
	if !n.PodCIDR.Contains(p.IP) {
		t.Fatalf("pod IP %s not in %s", p.IP, n.PodCIDR)
	}
}

// Building and tearing down a topology changes nothing in the test
// process's own network namespace, and Close removes every pin.
func TestHostNamespaceUntouchedAndTeardownComplete(t *testing.T) {
	t.Parallel()
	SkipUnlessRoot(t)
	before := hostLinks(t)
	topo, err := Create(Options{Nodes: 2, StateDir: isolatedStateDir(t), Logf: t.Logf})
	must(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = topo.Close()
		}
	})
	_ = topo.AddPod(t, topo.Node(1), "p")
	if got := hostLinks(t); got != before {
		t.Fatalf("host links changed:\nbefore %s\nafter  %s", before, got)
	}
	must(t, topo.Close())
	closed = true
	if _, err := os.Stat(topo.Dir); !os.IsNotExist(err) {
		t.Fatalf("run dir %s after Close: %v", topo.Dir, err)
	}
	pins, err := mountsUnder(filepath.Dir(topo.Dir))
	must(t, err)
	if len(pins) != 0 {
		t.Fatalf("pins after Close: %v", pins)
	}
	must(t, topo.Close()) // idempotent
}

// hostLinks describes the links of the test process's namespace (read
// only: a dump changes nothing).
func hostLinks(t *testing.T) string {
	t.Helper()
	ifaces, err := net.Interfaces()
	must(t, err)
	var s []string
	for _, i := range ifaces {
		s = append(s, fmt.Sprintf("%d:%s:%s:%s", i.Index, i.Name, i.HardwareAddr, i.Flags))
	}
	return strings.Join(s, ",")
}
