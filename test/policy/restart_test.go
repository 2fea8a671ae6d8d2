//go:build kernel

package policy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/binaries"
	"github.com/nodenet/nodenet/test/daemonproc"
	"github.com/nodenet/nodenet/test/netns/echo"
)

// upgradeVersion is the version of the build a firewalld is upgraded to.
const upgradeVersion = "v0.0.1-upgrade"

// testRestartFailClosed: while probes hammer a port a policy forbids,
// node0's firewalld is killed (-9), started again, then stopped and
// replaced by a build of another version with another table layout (drop
// logging on: every group chain's rules are rewritten, in one
// transaction). No probe may get through at any moment, connections
// established before stay up, and a restart with nothing changed writes
// nothing to the table.
func (f *fixture) testRestartFailClosed(t *testing.T) {
	f.requireEnforcement(t)
	f.timeCase(t, "restart-upgrade-fail-closed")
	t.Log("x/a admits tcp/81 only; tcp/80 and udp/80 of x/a are probed from x/b (same node), x/c (other node) and " +
		"the world all along while node0's firewalld is killed, restarted, and upgraded to another build with " +
		"another table layout; connections to tcp/81 opened before must keep working")
	fw := f.fw[0]
	origBin, origArgs := fw.Binary()
	t.Cleanup(func() {
		// Back to the suite's build for the cases after this one.
		if bin, args := fw.Binary(); bin != origBin || len(args) != len(origArgs) {
			_ = fw.Stop()
			fw.Use(origBin, origArgs)
			ctx, cancel := stepContext(t, firewalldStartTimeout)
			defer cancel()
			if err := fw.Start(); err != nil {
				t.Errorf("restart the suite's firewalld: %v", err)
			} else if _, err := fw.WaitReady(ctx); err != nil {
				t.Errorf("the suite's firewalld: %v", err)
			}
		}
		f.reset(t)
	})
	bins, err := binaries.BuildVersion(t.TempDir(), upgradeVersion, "firewalld")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := stepContext(t, 6*convergeTimeout)
	defer cancel()

	xa := Pod("x", "a")
	pol := netpol("x", "a-tcp-81-only", labels("pod", "a"), ingressRules(anything().on(port(TCP(81)))))
	inForce := step{name: "policy in force", policies: policies(pol), expect: func(e *Expectation) {
		e.DenyIngressTo(Pods(xa)).AllowIngressTo(Pods(xa), Anyone(), TCP(81))
	}}
	f.step(t, inForce, f.expected(inForce))

	// Connections established before anything happens.
	var sessions []*echo.Session
	for _, from := range []Peer{Pod("x", "b"), Pod("x", "c")} {
		s, err := f.pods[from].NetNS.OpenTCP(ctx, netip.AddrPortFrom(f.PodIP(xa), 81))
		if err != nil {
			t.Fatalf("open tcp/81 from %s: %v", from, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		sessions = append(sessions, s)
	}
	ask := func(when string) {
		t.Helper()
		for i, s := range sessions {
			if _, err := s.Ask(ctx); err != nil {
				t.Fatalf("%s: the connection established before (%d) is broken: %v", when, i, err)
			}
		}
	}
	ask("before")

	var streams []*watchStream
	for _, src := range []Peer{Pod("x", "b"), Pod("x", "c"), World()} {
		for _, p := range []Port{TCP(80), UDP(80)} {
			streams = append(streams, &watchStream{from: src, src: f.source(src), port: p})
		}
	}
	w := startLeakWatch(ctx, f.PodIP(xa), streams)
	defer w.stop()
	// gap waits until every stream has started n more probes: a stretch
	// of time the probes covered.
	gap := func(n int64) {
		t.Helper()
		if err := w.waitLaunched(ctx, w.minLaunched()+n); err != nil {
			t.Fatal(err)
		}
	}
	restartWithin := func(what string) {
		t.Helper()
		if err := fw.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := fw.WaitReady(ctx); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, fw.Logs(daemonproc.LogDumpLimit))
		}
	}
	gap(10)

	// 1. kill -9: the table stays as it is.
	fw.Kill()
	gap(25)
	ask("firewalld killed")
	// 2. The same build again: it adopts the table and writes nothing.
	restartWithin("restart after kill -9")
	st, err := fw.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Status.Count("tableWrites"); n != 0 {
		t.Errorf("a restart with nothing changed wrote %d messages to the table, want 0", n)
	}
	gap(10)
	ask("restarted")

	// 3. Upgrade: SIGTERM, another build with drop logging (every group
	// chain gets a log rule: the chains are rewritten, atomically).
	if err := fw.Stop(); err != nil {
		t.Fatal(err)
	}
	gap(25)
	fw.Use(bins["firewalld"], []string{"--peers=", "--log-drops-group=7"})
	restartWithin("upgrade")
	if st, err := fw.Status(ctx); err != nil {
		t.Fatal(err)
	} else if n, _ := st.Status.Count("tableWrites"); n == 0 {
		t.Error("the upgraded firewalld wrote nothing: the table with the new layout was not made")
	}
	gap(int64(probeTimeout/watchInterval) + 10)
	ask("upgraded")
	w.stop()
	if leaks := w.leaks(); leaks != "" {
		t.Fatalf("x/a answered on a port its policy forbids:\n%s", leaks)
	}
	// The upgraded firewalld still enforces what the policy says.
	f.converge(t, "after the upgrade", f.expected(inForce), nil, false) // nothing changed since it became ready: no sync to wait for
	t.Logf("%d probes of forbidden ports over %v across kill -9, restart and upgrade: none answered; the connections established before kept working",
		w.total(), time.Since(w.begin).Round(time.Millisecond))
}
