//go:build kernel

package routing

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/internal/testutil"
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
func BenchmarkConvergence5k(b *testing.B) {
	requireBIRD(b)
	announcer := netns.WorldIP()
	f := newFixtureWith(b, fixtureConfig{nodes: 2, routerdArgs: []string{
		"--full-mesh=false", // the Node of node1 is BIRD's: no session with it
		fmt.Sprintf("--peer=address=%s asn=%d", announcer, announcerASN),
	}})
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

		res, n := runPhase(b, ann, receivers, "enable", benchRoutes)
		pokes += n
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
	w := f.watchRoutes(b, []int{0})
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
	events := w.stop(b)
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

// BIRD.

type birdNeighbor struct {
	Name    string
	Address netip.Addr
	ASN     uint32
}

// announcerConfig fills testdata/bird-announcer.conf.tmpl.
type announcerConfig struct {
	RouterID, Local netip.Addr
	LocalAS         uint32
	Routes          []string
	Neighbors       []birdNeighbor
}

// receiverConfig fills testdata/bird-receiver.conf.tmpl.
type receiverConfig struct {
	RouterID, Local, Neighbor netip.Addr
	LocalAS, NeighborAS       uint32
}

// birdProc is one BIRD process of the benchmark.
type birdProc struct {
	name string
	sock string
	done chan struct{}
	out  *testutil.SyncBuffer
}

// requireBIRD skips unless BIRD 2 is installed.
func requireBIRD(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(p); err != nil {
			tb.Skipf("%s not found: install Debian's bird2 (hack/install-deps.sh)", p)
		}
	}
}

// startBIRD runs BIRD in the foreground in ns with the template tmpl of
// testdata filled with data, its config and control socket in a fresh
// directory, and returns once the control socket answers. It is killed
// when tb ends (before the namespaces go: it started after them).
func startBIRD(tb testing.TB, ns *netns.NetNS, name, tmpl string, data any) *birdProc {
	tb.Helper()
	t, err := template.ParseFiles(filepath.Join("testdata", tmpl))
	if err != nil {
		tb.Fatal(err)
	}
	var conf bytes.Buffer
	if err := t.Execute(&conf, data); err != nil {
		tb.Fatal(err)
	}
	dir := testutil.SocketDir(tb) // the control socket's path must be short
	confPath := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	p := &birdProc{name: name, sock: filepath.Join(dir, "bird.ctl"), done: make(chan struct{}), out: &testutil.SyncBuffer{}}
	cmd := exec.Command("bird", "-f", "-c", confPath, "-s", p.sock)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := ns.Start(cmd); err != nil {
		tb.Fatalf("start BIRD %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if tb.Failed() {
			tb.Logf("----- BIRD %s said -----\n%s", name, p.out.String())
		}
	})
	netnstest.WaitFor(tb, 10*time.Second, 20*time.Millisecond, "BIRD "+name+"'s control socket", func() (bool, string) {
		select {
		case <-p.done:
			tb.Fatalf("BIRD %s exited:\n%s", name, p.out.String())
		default:
		}
		out, err := p.birdc("show", "status")
		return err == nil, out
	})
	return p
}

// birdc runs birdc on p's control socket (a path: reachable from any
// namespace).
func (p *birdProc) birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", p.sock}, args...)...).CombinedOutput()
	return string(out), err
}

func (p *birdProc) mustBirdc(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := p.birdc(args...)
	if err != nil {
		tb.Fatalf("BIRD %s: birdc %v: %v\n%s", p.name, args, err, out)
	}
	return out
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

// Kernel routes of one protocol, timestamped.

// kernelRoutes follows the routes of one protocol to 198.19.0.0/16 in the
// main table of a namespace through its route notifications. It reads
// them from a netlink socket of its own and decodes only the header and
// the destination: the observer must cost little beside what it observes
// (netlink.RouteSubscribe decodes every attribute of every route and
// hands each to a channel, which on two cores took CPU from the
// receivers).
type kernelRoutes struct {
	proto uint8
	f     *os.File
	done  chan struct{}

	mu      sync.Mutex
	present map[netip.Prefix]bool
	events  []routeNote
	err     error
}

// routeNote is one notification that changed the set of routes: when it
// was read, and how many routes there were after it.
type routeNote struct {
	at    time.Time
	count int
}

func watchKernelRoutes(tb testing.TB, ns *netns.NetNS, proto uint8) *kernelRoutes {
	tb.Helper()
	w := &kernelRoutes{proto: proto, done: make(chan struct{}), present: map[netip.Prefix]bool{}}
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		// Room for every notification of a phase: one lost would
		// be a route never seen (ENOBUFS says so).
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 32<<20)
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_IPV4_ROUTE})
		}
		if err != nil {
			_ = unix.Close(fd)
		}
		return err
	})
	if err != nil {
		tb.Fatalf("%s: route notifications: %v", ns.Name, err)
	}
	w.f = os.NewFile(uintptr(fd), "rtnetlink-"+ns.Name) // non-blocking: served by the poller
	tb.Cleanup(w.close)
	go w.read()
	return w
}

func (w *kernelRoutes) read() {
	defer close(w.done)
	rc, err := w.f.SyscallConn()
	if err != nil {
		w.fail(err)
		return
	}
	buf := make([]byte, 64<<10)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			w.fail(fmt.Errorf("route notifications lost: %w", rerr))
			continue
		}
		at := time.Now()
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			l := int(binary.NativeEndian.Uint32(b))
			if l < unix.SizeofNlMsghdr || l > len(b) {
				break
			}
			w.message(binary.NativeEndian.Uint16(b[4:]), b[unix.SizeofNlMsghdr:l], at)
			b = b[min((l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1), len(b)):]
		}
	}
}

// message looks at one RTM_NEWROUTE or RTM_DELROUTE: struct rtmsg, then
// its attributes.
func (w *kernelRoutes) message(typ uint16, m []byte, at time.Time) {
	if (typ != unix.RTM_NEWROUTE && typ != unix.RTM_DELROUTE) || len(m) < unix.SizeofRtMsg {
		return
	}
	bits, table, proto := int(m[1]), uint32(m[4]), m[5]
	if m[0] != unix.AF_INET || proto != w.proto {
		return
	}
	var dst netip.Addr
	for a := m[unix.SizeofRtMsg:]; len(a) >= unix.SizeofRtAttr; {
		l := int(binary.NativeEndian.Uint16(a))
		if l < unix.SizeofRtAttr || l > len(a) {
			break
		}
		v := a[unix.SizeofRtAttr:l]
		switch binary.NativeEndian.Uint16(a[2:]) {
		case unix.RTA_DST:
			if len(v) == 4 {
				dst = netip.AddrFrom4([4]byte(v))
			}
		case unix.RTA_TABLE:
			if len(v) == 4 {
				table = binary.NativeEndian.Uint32(v)
			}
		}
		a = a[min((l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1), len(a)):]
	}
	if table != unix.RT_TABLE_MAIN || !dst.IsValid() || !benchCIDR.Contains(dst) {
		return
	}
	p := netip.PrefixFrom(dst, bits)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case typ == unix.RTM_NEWROUTE && !w.present[p]:
		w.present[p] = true
	case typ == unix.RTM_DELROUTE && w.present[p]:
		delete(w.present, p)
	default:
		return
	}
	w.events = append(w.events, routeNote{at: at, count: len(w.present)})
}

func (w *kernelRoutes) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *kernelRoutes) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.present)
}

// progress is the number of routes and of changes so far.
func (w *kernelRoutes) progress() (routes, changes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.present), len(w.events)
}

func (w *kernelRoutes) mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.events)
}

// span is the time of the first change after mark and of the change that
// made the count want.
func (w *kernelRoutes) span(mark, want int) (first, last time.Time, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if mark >= len(w.events) {
		return first, last, false
	}
	for _, e := range w.events[mark:] {
		if e.count == want {
			return w.events[mark].at, e.at, true
		}
	}
	return first, last, false
}

func (w *kernelRoutes) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *kernelRoutes) close() {
	_ = w.f.Close()
	<-w.done
}

// BGP UPDATEs on the wire.

// updateCapture timestamps the TCP segments of a BGP session from one
// address (the announcer) that carry more than a KEEPALIVE (19 bytes), as
// they arrive on a namespace's eth0: an AF_PACKET socket, with the
// kernel's receive timestamps.
type updateCapture struct {
	ns   *netns.NetNS
	from netip.Addr
	f    *os.File
	done chan struct{}

	mu       sync.Mutex
	times    []time.Time
	barriers map[uint16]bool
	err      error
}

// barrierPort is where the barrier datagrams go (discard).
const barrierPort = 9

func captureUpdates(tb testing.TB, ns *netns.NetNS, from netip.Addr) *updateCapture {
	tb.Helper()
	c := &updateCapture{ns: ns, from: from, done: make(chan struct{}), barriers: map[uint16]bool{}}
	// ETH_P_ALL: the taps of one protocol see incoming packets only, and
	// the barrier is an outgoing one.
	proto := int(htons(unix.ETH_P_ALL))
	var fd int
	err := ns.Do(func() error {
		var err error
		// SOCK_DGRAM: the packet without the link header.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index})
		}
		if err == nil {
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		}
		if err == nil {
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		}
		if err != nil {
			_ = unix.Close(fd)
		}
		return err
	})
	if err != nil {
		tb.Fatalf("%s: AF_PACKET socket on eth0: %v", ns.Name, err)
	}
	c.f = os.NewFile(uintptr(fd), "packet-"+ns.Name) // non-blocking: served by the poller
	tb.Cleanup(c.close)
	go c.read()
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *updateCapture) read() {
	defer close(c.done)
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.fail(err)
		return
	}
	buf := make([]byte, 256) // the headers are enough
	oob := make([]byte, unix.CmsgSpace(16))
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			c.fail(rerr)
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Protocol != htons(unix.ETH_P_IP) {
			continue
		}
		now := time.Now()
		at := now
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SCM_TIMESTAMPNS && len(cm.Data) >= 16 {
					ts := time.Unix(int64(binary.NativeEndian.Uint64(cm.Data)), int64(binary.NativeEndian.Uint64(cm.Data[8:])))
					// A timestamp of another clock (a delivery time)
					// would be far off: then the time read here.
					if d := now.Sub(ts); d >= 0 && d < time.Second {
						at = ts
					}
				}
			}
		}
		c.packet(buf[:n], at)
	}
}

// packet looks at one packet (its headers), if IPv4.
func (c *updateCapture) packet(p []byte, at time.Time) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if len(p) < ihl+8 {
		return
	}
	src := netip.AddrFrom4([4]byte(p[12:16]))
	sport, dport := binary.BigEndian.Uint16(p[ihl:]), binary.BigEndian.Uint16(p[ihl+2:])
	switch {
	case p[9] == unix.IPPROTO_UDP && dport == barrierPort && src != c.from:
		c.mu.Lock()
		c.barriers[sport] = true
		c.mu.Unlock()
	case p[9] == unix.IPPROTO_TCP && src == c.from && (sport == 179 || dport == 179) && len(p) >= ihl+20:
		payload := total - ihl - int(p[ihl+12]>>4)*4
		if payload > 19 {
			c.mu.Lock()
			c.times = append(c.times, at)
			c.mu.Unlock()
		}
	}
}

// barrier sends a datagram out of eth0 to the announcer's discard port
// and waits until the capture has read it: every packet before it has
// been read too.
func (c *updateCapture) barrier(tb testing.TB) {
	tb.Helper()
	var port uint16
	err := c.ns.Do(func() error {
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.from, barrierPort)))
		if err != nil {
			return err
		}
		defer conn.Close()
		port = uint16(conn.LocalAddr().(*net.UDPAddr).Port)
		_, err = conn.Write([]byte("barrier"))
		return err
	})
	if err != nil {
		tb.Fatalf("%s: barrier datagram: %v", c.ns.Name, err)
	}
	netnstest.WaitFor(tb, convergeTimeout, time.Millisecond, c.ns.Name+": the capture's barrier", func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.barriers[port], "not seen yet"
	})
}

func (c *updateCapture) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.times)
}

// since returns the segment times after mark.
func (c *updateCapture) since(mark int) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.times[mark:]...)
}

func (c *updateCapture) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

func (c *updateCapture) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *updateCapture) close() {
	_ = c.f.Close()
	<-c.done
}
