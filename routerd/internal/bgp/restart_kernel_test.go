//go:build kernel

package bgp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/vishvananda/netns"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/routerd/internal/model"
)

// envHelper carries the configuration of TestKernelHelperSpeaker.
const envHelper = "BGP_TEST_HELPER_SPEAKER"

// helperConfig is what a helper speaker runs with.
type helperConfig struct {
	Global  model.Global
	Peers   []model.Peer
	Adverts []model.Advertisement
	NextHop netip.Addr
}

const helperReady = "HELPER-SPEAKER-READY"

// TestKernelHelperSpeaker is not a test: it is the speaker process that
// TestKernelGracefulRestart starts and kills. It configures a speaker as
// routerd does (advertisements before peers), says it is ready on stdout,
// and runs until stdin closes or it is killed.
func TestKernelHelperSpeaker(t *testing.T) {
	raw := os.Getenv(envHelper)
	if raw == "" {
		t.Skip("helper process of TestKernelGracefulRestart")
	}
	var c helperConfig
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	s := New(testLogger(t))
	ctx := context.Background()
	if err := s.Start(ctx, c.Global); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdvertisements(ctx, c.Adverts, c.NextHop); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPeers(ctx, c.Peers); err != nil {
		t.Fatal(err)
	}
	fmt.Println(helperReady)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// startHelperSpeaker runs TestKernelHelperSpeaker with c in a child
// process (in this process's network namespace) and returns once the
// speaker is configured; the process is killed at the end of the test at
// the latest.
func startHelperSpeaker(t *testing.T, c helperConfig) (*exec.Cmd, <-chan error) {
	t.Helper()
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/proc/self/exe", "-test.run=^TestKernelHelperSpeaker$", "-test.count=1")
	cmd.Env = append(os.Environ(), envHelper+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Holding the write end keeps the helper running until we kill it.
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	ns, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Close() })
	done := netnstest.Start(t, ns, cmd)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == helperReady {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("helper speaker exited before it was ready")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("helper speaker not ready after 30s")
	}
	return cmd, done
}

// pathRecorder records every best-path event of one prefix on a speaker,
// from GoBGP's own event stream: a withdrawal shows there even if it is
// undone before anyone polls Paths.
type pathRecorder struct {
	mu     sync.Mutex
	events []*api.Path
}

func recordPaths(t *testing.T, s *Speaker, prefix netip.Prefix) *pathRecorder {
	t.Helper()
	r := &pathRecorder{}
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	err := srv.WatchEvent(t.Context(), &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
		Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST}},
	}}, func(ev *api.WatchEventResponse) {
		for _, p := range ev.GetTable().GetPaths() {
			if pf, _, _, err := learnedPath(p); err == nil && pf == prefix {
				r.mu.Lock()
				r.events = append(r.events, p)
				r.mu.Unlock()
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// withdrawals counts the events that withdrew the prefix, of n events.
func (r *pathRecorder) withdrawals() (withdrawn, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.events {
		if p.GetIsWithdraw() {
			withdrawn++
		}
	}
	return withdrawn, len(r.events)
}

// staleIn says whether s's best path to prefix is marked stale, as GoBGP's
// RIB has it (marking paths stale changes no best path, so the event
// stream does not show it).
func staleIn(t *testing.T, s *Speaker, prefix netip.Prefix) (stale, found bool) {
	t.Helper()
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	err := srv.ListPath(t.Context(), &api.ListPathRequest{TableType: api.TableType_GLOBAL, Family: familyIPv4,
		Prefixes: []*api.TableLookupPrefix{{Prefix: prefix.String()}}}, func(d *api.Destination) {
		for _, p := range d.GetPaths() {
			if p.GetBest() {
				stale, found = p.GetStale(), true
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return stale, found
}

// TestKernelGracefulRestart crashes speaker A (a child process killed with
// SIGKILL, so its sessions end without NOTIFICATION, as when routerd exits
// on SIGTERM without Stop) and starts it again announcing the same: B must
// keep A's path all along, stale while A is away, and never withdraw it.
// Then A crashes again and comes back announcing nothing: B withdraws the
// stale path on A's End-of-RIB, not before. Of two nodes one dials (see
// waitsForPeer): both roles are tried.
func TestKernelGracefulRestart(t *testing.T) {
	requireNetns(t)
	t.Run("keeper dials", func(t *testing.T) {
		testGracefulRestart(t, "198.18.3.1", "198.18.3.2", "198.19.31.0/24", "198.19.32.0/24")
	})
	t.Run("keeper waits", func(t *testing.T) {
		testGracefulRestart(t, "198.18.3.4", "198.18.3.3", "198.19.34.0/24", "198.19.33.0/24")
	})
}

// testGracefulRestart restarts A, which announces aPrefixS, with B keeping
// its routes (B announces bPrefix).
func testGracefulRestart(t *testing.T, a, b, aPrefixS, bPrefix string) {
	addLo(t, a, b)
	aPrefix := netip.MustParsePrefix(aPrefixS)
	gb := globalAt(b)
	gb.GracefulRestart = time.Minute
	sb := startSpeaker(t, gb)
	advertise(t, sb, b, bPrefix)
	setPeers(t, sb, nodePeer(a))
	rec := recordPaths(t, sb, aPrefix)

	ga := globalAt(a)
	ga.GracefulRestart = time.Minute
	cfg := helperConfig{Global: ga, Peers: []model.Peer{nodePeer(b)},
		Adverts: []model.Advertisement{{Prefix: aPrefix, Why: "test"}}, NextHop: netip.MustParseAddr(a)}
	wantB := []model.Path{path(aPrefix.String(), a, a)}

	// keepsPath wraps a waitUntil condition: B's path to A's prefix must
	// be there at every look.
	keepsPath := func(cond func() (bool, string)) func() (bool, string) {
		return func() (bool, string) {
			if got := sb.Paths(); fmt.Sprint(got) != fmt.Sprint(wantB) {
				st, _ := peerStateOf(t, sb, a)
				t.Fatalf("B's paths %v, want %v all along (A %s, EndOfRIB %v)", got, wantB, st.State, st.EndOfRIB)
			}
			return cond()
		}
	}

	cmd, done := startHelperSpeaker(t, cfg)
	waitUntil(t, sb, sessionTimeout, "B up with A, End-of-RIB in", established(t, sb, true, a))
	waitUntil(t, sb, 5*time.Second, "B learns A's prefix", havePaths(sb, wantB...))
	if st, _ := peerStateOf(t, sb, a); !st.GracefulRestart {
		t.Fatalf("graceful restart not negotiated: %+v", st)
	}

	// The crash: no NOTIFICATION, the kernel just closes A's sockets.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	crashed := time.Now()
	waitUntil(t, sb, 10*time.Second, "B sees A's session down", keepsPath(func() (bool, string) {
		st, _ := peerStateOf(t, sb, a)
		return !st.Established(), "A's state " + st.State
	}))
	if stale, found := staleIn(t, sb, aPrefix); !stale || !found {
		t.Fatalf("B's path to A's prefix: stale %v, found %v", stale, found)
	}

	// A comes back, announcing the same.
	cmd, done = startHelperSpeaker(t, cfg)
	waitUntil(t, sb, sessionTimeout, "B up with A again, End-of-RIB in", keepsPath(established(t, sb, true, a)))
	waitUntil(t, sb, 5*time.Second, "B's path to A fresh again", keepsPath(func() (bool, string) {
		stale, found := staleIn(t, sb, aPrefix)
		return found && !stale, fmt.Sprintf("stale %v, found %v", stale, found)
	}))
	if withdrawn, n := rec.withdrawals(); withdrawn > 0 {
		t.Fatalf("B withdrew A's path %d times during A's restart (%d events)", withdrawn, n)
	}
	_, n := rec.withdrawals()
	t.Logf("A was away %v; B saw %d events of its path, none a withdrawal", time.Since(crashed).Round(time.Millisecond), n)

	// A crashes again and comes back announcing nothing: its End-of-RIB
	// ends the restart, and B withdraws the stale path then, not before.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done
	waitUntil(t, sb, 10*time.Second, "B sees A's session down again", keepsPath(func() (bool, string) {
		st, _ := peerStateOf(t, sb, a)
		return !st.Established(), "A's state " + st.State
	}))
	cfg.Adverts = nil
	startHelperSpeaker(t, cfg)
	waitUntil(t, sb, sessionTimeout, "B withdraws A's stale path after A's End-of-RIB", func() (bool, string) {
		st, _ := peerStateOf(t, sb, a)
		paths := sb.Paths()
		if len(paths) == 0 && !(st.Established() && st.EndOfRIB) {
			t.Fatalf("B withdrew A's stale path before A's End-of-RIB (A %s)", st.State)
		}
		return len(paths) == 0, fmt.Sprintf("paths %v, A %s", paths, st.State)
	})
	// The recorder's stream runs apart from the speaker's: it may lag.
	waitUntil(t, sb, 5*time.Second, "the recorder sees the one withdrawal", func() (bool, string) {
		withdrawn, n := rec.withdrawals()
		if withdrawn > 1 {
			t.Fatalf("%d withdrawals of A's path, want 1", withdrawn)
		}
		return withdrawn == 1, fmt.Sprintf("%d events, %d withdrawals", n, withdrawn)
	})
}
