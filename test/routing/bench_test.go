//go:build kernel

package routing

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/test/netns"
)

// BenchmarkConvergence5k: 5,000 pod CIDRs announced by an external peer,
// received in the same run by routerd and by BIRD.
//
//	world   198.18.0.1   BIRD "announcer", AS 65001: 5,000 /29s of
//	                     198.19.0.0/16 in a static protocol, off until the
//	                     benchmark enables it; eBGP to both receivers
//	node0   198.18.0.10  routerd (the fixture's: control plane, Node,
//	                     --peer "address=198.18.0.1 asn=65001",
//	                     --full-mesh=false), routes under protocol 196
//	node1   198.18.0.11  BIRD "receiver", AS 65002: its kernel protocol
//	                     exports into node1's main table (protocol 12)
//
// With the sessions up and no route anywhere, each iteration:
//
//   - announce: `birdc enable announced`. An AF_PACKET socket on each
//     receiver's eth0 timestamps (SO_TIMESTAMPNS) the TCP segments from
//     the announcer's BGP session with more than 19 bytes of payload (the
//     UPDATEs; a KEEPALIVE is 19 bytes); netlink route notifications of
//     the receiver's protocol in its namespace timestamp the routes. For
//     each receiver: the last UPDATE to the 5,000th route in the kernel
//     (ms-after-last-update), the first UPDATE to the last route
//     (ms-first-update-to-all) and the kernel install rate,
//     5,000 / (last route − first route) (routes/s).
//   - routerd's RSS (VmRSS) with the 5,000 routes installed, beside its
//     RSS before the announce (none: a fresh routerd in the first
//     iteration; in later ones, the one restarted with 5k, after the
//     withdrawal).
//   - restart: routerd stopped (SIGTERM) and started again with the 5,000
//     routes in the kernel; every route notification of protocol 196 in
//     node0 until routerd is back in sync (session established, End-of-RIB
//     in, 5,000 routes, no sync pending) is counted: restart-route-events,
//     which must be 0.
//   - withdraw: `birdc disable announced`, measured the same way: the last
//     UPDATE to the last route deleted.
//
// Numbers are reported (b.ReportMetric, averages over b.N), never
// asserted. BIRD 2.0.12 may hold its last batch of UPDATEs back 1–3 s
// until its event loop is woken: when no route has come for stallPoke,
// the benchmark wakes it (`birdc show status`). That stretches the
// first-update-to-all times of both receivers alike; the times after the
// last update do not see it.
//
// Run it as root, after `make controlplane cni-plugins`, with BIRD 2
// installed:
//
//	go test -tags kernel -run '^$' -bench Convergence5k -benchtime 1x ./test/routing/
//
// With NODENET_BENCH_CPUPROFILE=<file>, routerd runs with --profiling and
// its CPU profile over the first announce is written to the file (for
// `go tool pprof`).
func BenchmarkConvergence5k(b *testing.B) {
	requireBIRD(b)
	announcer := netns.WorldIP()
	profile := os.Getenv("NODENET_BENCH_CPUPROFILE")
	args := []string{
		"--full-mesh=false", // the Node of node1 is BIRD's: no session with it
		fmt.Sprintf("--peer=address=%s asn=%d", announcer, announcerASN),
	}
	if profile != "" {
		args = append(args, "--profiling")
	}
	f := newFixtureWith(b, fixtureConfig{nodes: 2, routerdArgs: args})
	rd, rnode, bnode := f.routerd[0], f.nodes[0], f.nodes[1]

	phase := time.Now()
	ann := startBIRD(b, f.topo.World().NetNS, "announcer", "bird-announcer.conf.tmpl", announcerConfig{
		RouterID: announcer, Local: announcer, LocalAS: announcerASN, Routes: benchPrefixes(),
		Neighbors: []birdNeighbor{
			{Name: "to_routerd", Address: rnode.IP, ASN: 64512}, // routerd's default --asn
			{Name: "to_receiver", Address: bnode.IP, ASN: receiverASN},
		},
	})
	startBIRD(b, bnode.NetNS, "receiver", "bird-receiver.conf.tmpl", receiverConfig{
		RouterID: bnode.IP, Local: bnode.IP, LocalAS: receiverASN, Neighbor: announcer, NeighborAS: announcerASN,
	})
	ctx, cancel := stepContext(b, startTimeout)
	defer cancel()
	if err := rd.Start(); err != nil {
		b.Fatal(err)
	}
	if _, err := rd.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	netnstest.WaitFor(b, startTimeout, 50*time.Millisecond, "the announcer's sessions with routerd and BIRD established", func() (bool, string) {
		out, err := ann.birdc("show", "protocols")
		return err == nil && birdEstablished(out, "to_routerd") && birdEstablished(out, "to_receiver"), out
	})
	f.waitPeerInSync(b, ctx, announcer, 0, "routerd's session with the announcer in sync")
	f.timing("bench: BIRDs started, sessions up, routerd in sync", time.Since(phase))

	receivers := []*receiver{
		{name: "routerd", ns: rnode.NetNS, proto: routeProtocol},
		{name: "bird", ns: bnode.NetNS, proto: unix.RTPROT_BIRD},
	}
	for _, r := range receivers {
		r.updates = captureUpdates(b, r.ns, announcer)
		r.routes = watchKernelRoutes(b, r.ns, r.proto)
	}
	var (
		sum                  = map[string]float64{}
		rssNone, rss5k       float64
		restartEvents, pokes int
		restartTime          time.Duration
	)
	for range b.N {
		if n := receivers[0].routes.count() + receivers[1].routes.count(); n != 0 {
			b.Fatalf("%d routes of 198.19.0.0/16 in the receivers before the announce", n)
		}
		kb, err := vmRSS(rd.PID())
		if err != nil {
			b.Fatal(err)
		}
		rssNone += float64(kb)

		var profiled chan error
		if profile != "" && profiled == nil {
			profiled = make(chan error, 1)
			go func() { profiled <- cpuProfile(rnode.NetNS, profile) }()
		}
		res, n := runPhase(b, ann, receivers, "enable", benchRoutes)
		pokes += n
		if profiled != nil {
			if err := <-profiled; err != nil {
				b.Errorf("routerd's CPU profile: %v", err)
			}
			profile = ""
		}
		for _, r := range res {
			sum[r.name+"-ms-after-last-update"] += ms(r.lastRoute.Sub(r.lastUpdate))
			sum[r.name+"-ms-first-update-to-all"] += ms(r.lastRoute.Sub(r.firstUpdate))
			sum[r.name+"-routes/s"] += benchRoutes / r.lastRoute.Sub(r.firstRoute).Seconds()
		}
		if kb, err = vmRSS(rd.PID()); err != nil {
			b.Fatal(err)
		}
		rss5k += float64(kb)

		begin := time.Now()
		restartEvents += f.restartRouterd(b, announcer)
		restartTime += time.Since(begin)

		res, n = runPhase(b, ann, receivers, "disable", 0)
		pokes += n
		for _, r := range res {
			sum[r.name+"-withdraw-ms-after-last-update"] += ms(r.lastRoute.Sub(r.lastUpdate))
			sum[r.name+"-withdraw-ms-first-update-to-all"] += ms(r.lastRoute.Sub(r.firstUpdate))
		}
	}
	for _, r := range receivers {
		r.updates.close()
		r.routes.close()
		if err := r.updates.failure(); err != nil {
			b.Errorf("%s: capture: %v", r.name, err)
		}
		if err := r.routes.failure(); err != nil {
			b.Errorf("%s: route notifications: %v", r.name, err)
		}
	}
	n := float64(b.N)
	for unit, v := range sum {
		b.ReportMetric(v/n, unit)
	}
	b.ReportMetric(float64(restartEvents)/n, "restart-route-events")
	b.ReportMetric(restartTime.Seconds()/n, "s-restart-to-in-sync")
	b.ReportMetric(rssNone/n, "routerd-kB-RSS-none")
	b.ReportMetric(rss5k/n, "routerd-kB-RSS-5k")
	b.ReportMetric(float64(pokes)/n, "bird-pokes")
}

const (
	// benchRoutes is how many routes the announcer announces: /29s of
	// 198.19.0.0/16 (5,000 /24s do not fit in 198.18.0.0/15, the only
	// range tests may use; a prefix's length costs BGP nothing).
	benchRoutes  = 5000
	announcerASN = 65001
	receiverASN  = 65002
	// phaseTimeout bounds an announce or a withdrawal.
	phaseTimeout = 30 * time.Second
	// stallPoke is how long the benchmark waits for the next route before
	// it wakes the announcer's event loop (see the benchmark's comment).
	stallPoke = 250 * time.Millisecond
)

// benchCIDR holds every announced prefix.
var benchCIDR = netip.MustParsePrefix("198.19.0.0/16")

func benchPrefixes() []string {
	out := make([]string, benchRoutes)
	for i := range out {
		a := netip.AddrFrom4([4]byte{198, 19, byte(i * 8 / 256), byte(i * 8 % 256)})
		out[i] = netip.PrefixFrom(a, 29).String()
	}
	return out
}

// cpuProfile writes routerd's CPU profile over the next second (its
// default --metrics-addr, in ns) to path.
func cpuProfile(ns *netns.NetNS, path string) error {
	resp, err := ns.HTTPClient(10 * time.Second).Get("http://127.0.0.1:10280/debug/pprof/profile?seconds=1")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// receiver is one of the two receivers of the announcer's routes.
type receiver struct {
	name    string
	ns      *netns.NetNS
	proto   uint8
	updates *updateCapture
	routes  *kernelRoutes
}

// phaseResult is one receiver's times in a phase.
type phaseResult struct {
	name                    string
	firstUpdate, lastUpdate time.Time
	firstRoute, lastRoute   time.Time
}

// runPhase enables or disables the announcer's static protocol and waits
// until every receiver holds want routes of its protocol; it returns each
// receiver's times and how often BIRD had to be woken.
func runPhase(b *testing.B, ann *birdProc, receivers []*receiver, cmd string, want int) ([]phaseResult, int) {
	b.Helper()
	marks := make([]int, len(receivers))
	umarks := make([]int, len(receivers))
	for i, r := range receivers {
		marks[i] = r.routes.mark()
		umarks[i] = r.updates.mark()
	}
	ann.mustBirdc(b, cmd, "announced")
	pokes := 0
	lastProgress, lastSeen := time.Now(), -1
	netnstest.WaitFor(b, phaseTimeout, 2*time.Millisecond, fmt.Sprintf("%d routes in every receiver after `birdc %s announced`", want, cmd), func() (bool, string) {
		done, seen := true, 0
		var state []string
		for _, r := range receivers {
			c, ev := r.routes.progress()
			seen += ev
			done = done && c == want
			state = append(state, fmt.Sprintf("%s %d routes", r.name, c))
		}
		if done {
			return true, ""
		}
		if seen != lastSeen {
			lastProgress, lastSeen = time.Now(), seen
		} else if time.Since(lastProgress) > stallPoke {
			ann.mustBirdc(b, "show", "status") // wakes BIRD's event loop
			pokes++
			lastProgress = time.Now()
		}
		return false, strings.Join(state, ", ")
	})
	var out []phaseResult
	for i, r := range receivers {
		// Every UPDATE that made the routes came in before them; the
		// barrier makes sure the capture has read them all.
		r.updates.barrier(b)
		res := phaseResult{name: r.name}
		var ok bool
		if res.firstRoute, res.lastRoute, ok = r.routes.span(marks[i], want); !ok {
			b.Fatalf("%s: no route events reaching %d", r.name, want)
		}
		ups := r.updates.since(umarks[i])
		if len(ups) == 0 {
			b.Fatalf("%s: no UPDATE from the announcer captured", r.name)
		}
		res.firstUpdate, res.lastUpdate = ups[0], ups[len(ups)-1]
		b.Logf("%s %s: %d UPDATE segments over %v; routes from %v to %v after the first UPDATE; last route %v after the last UPDATE",
			cmd, r.name, len(ups), res.lastUpdate.Sub(res.firstUpdate).Round(time.Microsecond),
			res.firstRoute.Sub(res.firstUpdate).Round(time.Microsecond), res.lastRoute.Sub(res.firstUpdate).Round(time.Microsecond),
			res.lastRoute.Sub(res.lastUpdate).Round(time.Microsecond))
		out = append(out, res)
	}
	return out, pokes
}

// restartRouterd stops node0's routerd (SIGTERM) and starts it again with
// the routes in the kernel, waits until it is back in sync with the
// announcer, and returns the number of route notifications of routerd's
// protocol in node0 meanwhile.
func (f *fixture) restartRouterd(b *testing.B, announcer netip.Addr) int {
	b.Helper()
	ctx, cancel := stepContext(b, startTimeout)
	defer cancel()
	w := netns.WatchRoutes(b, routeProtocol, f.nodes[0])
	r := f.routerd[0]
	if err := r.Stop(); err != nil {
		b.Fatal(err)
	}
	if err := r.Start(); err != nil {
		b.Fatal(err)
	}
	if _, err := r.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	f.waitPeerInSync(b, ctx, announcer, benchRoutes, "routerd back in sync after its restart")
	events := w.Stop(b, convergeTimeout)
	if len(events) > 0 {
		b.Logf("route events of protocol %d during routerd's restart (want none):\n%s", routeProtocol, joinEvents(events[:min(len(events), 20)]))
	}
	return len(events)
}

// waitPeerInSync waits until node0's routerd has exactly one BGP peer,
// the announcer, established with its End-of-RIB received, holds routes
// routes, and has nothing pending, in two polls in a row.
func (f *fixture) waitPeerInSync(tb testing.TB, ctx context.Context, peer netip.Addr, routes uint64, what string) {
	tb.Helper()
	streak := 0
	netnstest.WaitFor(tb, startTimeout, 50*time.Millisecond, what, func() (bool, string) {
		rep, err := f.routerd[0].Status(ctx)
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case !rep.Serving():
			why = fmt.Sprintf("routerd %s: %s", rep.Health, rep.Error)
		case rep.Status.Sync.LastError != "":
			why = "last sync failed: " + rep.Status.Sync.LastError
		case rep.Status.Sync.Pending:
			why = "a change pending"
		case len(rep.Status.BGPPeers) != 1 || rep.Status.BGPPeers[0].Address != peer.String() ||
			!rep.Status.BGPPeers[0].Established() || !rep.Status.BGPPeers[0].EndOfRIB:
			why = fmt.Sprintf("BGP peers %+v, want %s established with End-of-RIB", rep.Status.BGPPeers, peer)
		default:
			if n, _ := rep.Status.Count("routes"); n != routes {
				why = fmt.Sprintf("%d routes, want %d", n, routes)
			}
		}
		if why != "" {
			streak = 0
			return false, why
		}
		streak++
		return streak >= 2, "in sync once"
	})
}

// vmRSS is the resident set of process pid in kB.
func vmRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}
