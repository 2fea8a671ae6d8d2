//go:build kernel

// The kernel tests run real BGP sessions, so they need the whole test
// process in a network namespace of its own: GoBGP opens its sockets from
// goroutines of its own, which a per-thread namespace cannot confine.
// TestMain re-executes the test binary in a new namespace when root (see
// netnstest.MainInOwnNetns); elsewhere these tests skip.
//
// Address plan (all inside that namespace; nothing leaves it):
//
//	198.18.0.1-3    full mesh (lo)                 announce 198.19.1-3.0/24
//	198.18.1.1-3    route reflector .1, clients    announce 198.19.12-13.0/24
//	198.18.2.1-3    MD5                            (no routes)
//	198.18.3.1-4    graceful restart: .1 and .4    announce 198.19.31-34.0/24
//	                restart (child processes
//	                killed with SIGKILL), .2 and
//	                .3 keep their routes
//	198.18.4.0/24   veth to BIRD's namespace: us .1, BIRDs .2-.4;
//	                we announce 198.19.40.0/24, BIRDs 198.19.42-43.0/24
//	198.18.5.0/24   veth to BIRD's namespace for the benchmark: us .1,
//	                BIRD .2 announcing 5,000 /29s of 198.19.0.0/16
//
// The speakers of one test are on addresses of their own, each listening
// on its address only (port 179) and dialling from it.

package bgp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/routerd/internal/model"
)

func TestMain(m *testing.M) { os.Exit(netnstest.MainInOwnNetns(m)) }

const testASN = 64512

func requireNetns(tb testing.TB) {
	tb.Helper()
	netnstest.RequireOwnNetns(tb, "runs BGP speakers on 198.18.0.0/15 addresses")
}

// addLo puts addrs (as /32) on lo.
func addLo(tb testing.TB, addrs ...string) {
	tb.Helper()
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		tb.Fatal(err)
	}
	for _, a := range addrs {
		ip := net.ParseIP(a).To4()
		if err := netlink.AddrReplace(lo, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}}); err != nil {
			tb.Fatalf("address %s on lo: %v", a, err)
		}
	}
}

// testLogger logs to the test at info: GoBGP's own info messages are at
// debug, its warnings show.
func testLogger(tb testing.TB) *zap.Logger {
	return zaptest.NewLogger(tb, zaptest.Level(zap.InfoLevel))
}

// globalAt is the Global of a speaker on addr, listening on addr:179.
func globalAt(addr string) model.Global {
	a := netip.MustParseAddr(addr)
	return model.Global{RouterID: a, ASN: testASN, ListenPort: 179, ListenAddresses: []netip.Addr{a}}
}

// startSpeaker starts a speaker with g, stopped at the end of the test.
func startSpeaker(tb testing.TB, g model.Global) *Speaker {
	tb.Helper()
	s := New(testLogger(tb).With(zap.Stringer("speaker", g.RouterID)))
	if err := s.Start(tb.Context(), g); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Stop() })
	return s
}

func nodePeer(addr string) model.Peer {
	return model.Peer{Address: netip.MustParseAddr(addr), ASN: testASN, Kind: model.NodePeer, Name: "node-" + addr}
}

func advertise(tb testing.TB, s *Speaker, nextHop string, prefixes ...string) {
	tb.Helper()
	var ads []model.Advertisement
	for _, p := range prefixes {
		ads = append(ads, model.Advertisement{Prefix: netip.MustParsePrefix(p), Why: "test"})
	}
	if err := s.SetAdvertisements(tb.Context(), ads, netip.MustParseAddr(nextHop)); err != nil {
		tb.Fatal(err)
	}
}

func setPeers(tb testing.TB, s *Speaker, peers ...model.Peer) {
	tb.Helper()
	if err := s.SetPeers(tb.Context(), peers); err != nil {
		tb.Fatal(err)
	}
}

// waitUntil polls cond whenever s signals a change, and at least every
// 50 ms, until it holds; after timeout it fails with cond's last
// description of what it saw.
func waitUntil(tb testing.TB, s *Speaker, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-s.Changes():
		case <-tick.C:
		case <-deadline.C:
			tb.Fatalf("%s: not within %v; %s", what, timeout, state)
		}
	}
}

// havePaths is a waitUntil condition: s's learned paths are exactly want.
func havePaths(s *Speaker, want ...model.Path) func() (bool, string) {
	return func() (bool, string) {
		got := s.Paths()
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("paths %v, want %v", got, want)
	}
}

// peerState returns s's state of the neighbour at addr.
func peerStateOf(tb testing.TB, s *Speaker, addr string) (model.PeerState, bool) {
	tb.Helper()
	ps, err := s.Peers(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	for _, p := range ps {
		if p.Address == netip.MustParseAddr(addr) {
			return p, true
		}
	}
	return model.PeerState{}, false
}

// established is a waitUntil condition: s's sessions with addrs are up
// and their End-of-RIB arrived when eor.
func established(tb testing.TB, s *Speaker, eor bool, addrs ...string) func() (bool, string) {
	return func() (bool, string) {
		var seen []string
		ok := true
		for _, a := range addrs {
			p, found := peerStateOf(tb, s, a)
			seen = append(seen, fmt.Sprintf("%s:%s eor=%v", a, p.State, p.EndOfRIB))
			ok = ok && found && p.Established() && (!eor || p.EndOfRIB)
		}
		return ok, "peers " + strings.Join(seen, ", ")
	}
}
