//go:build kernel

package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// sessionTimeout bounds the wait for sessions: GoBGP dials a new
// neighbour after 1-2 s, and after a failed or refused attempt every
// connectRetry.
const sessionTimeout = 30 * time.Second

func TestKernelFullMesh(t *testing.T) {
	requireNetns(t)
	addrs := []string{"198.18.0.1", "198.18.0.2", "198.18.0.3"}
	prefixes := []string{"198.19.1.0/24", "198.19.2.0/24", "198.19.3.0/24"}
	addLo(t, addrs...)
	var sp []*Speaker
	for i, a := range addrs {
		g := globalAt(a)
		g.GracefulRestart = time.Minute
		s := startSpeaker(t, g)
		advertise(t, s, a, prefixes[i])
		sp = append(sp, s)
	}
	for i, s := range sp {
		var peers []model.Peer
		for j, a := range addrs {
			if j != i {
				peers = append(peers, nodePeer(a))
			}
		}
		if i == 0 {
			// A peer that cannot be configured is reported; the others
			// are configured all the same.
			err := s.SetPeers(t.Context(), append(peers, model.Peer{Name: "broken", ASN: testASN}))
			if err == nil || !strings.Contains(err.Error(), "broken") {
				t.Fatalf("error %v, want the broken peer's", err)
			}
			continue
		}
		setPeers(t, s, peers...)
	}
	// wantPaths is what speaker i learns when speaker j announces
	// prefixes[j] with itself as next hop.
	wantPaths := func(i int, extra ...model.Path) []model.Path {
		var out []model.Path
		for j, a := range addrs {
			if j != i {
				out = append(out, path(prefixes[j], a, a))
			}
		}
		return append(out, extra...)
	}
	for i, s := range sp {
		var others []string
		for j, a := range addrs {
			if j != i {
				others = append(others, a)
			}
		}
		waitUntil(t, s, sessionTimeout, addrs[i]+" up with the others", established(t, s, true, others...))
		waitUntil(t, s, 5*time.Second, addrs[i]+" learns the others' prefixes", havePaths(s, wantPaths(i)...))
	}
	// What A reports about B: one prefix each way (iBGP does not pass
	// C's prefix on), graceful restart negotiated, End-of-RIB in.
	st, _ := peerStateOf(t, sp[0], addrs[1])
	if st.Peer != nodePeer(addrs[1]) || st.Received != 1 || st.Accepted != 1 || st.Advertised != 1 ||
		!st.GracefulRestart || !st.EndOfRIB || st.Since.IsZero() || time.Since(st.Since) > time.Minute {
		t.Errorf("A's state of B: %+v", st)
	}

	t.Run("withdrawal", func(t *testing.T) {
		advertise(t, sp[0], addrs[0]) // none
		for i := 1; i < 3; i++ {
			waitUntil(t, sp[i], 5*time.Second, addrs[i]+" loses A's prefix", havePaths(sp[i], wantPaths(i)[1:]...))
		}
		advertise(t, sp[0], addrs[0], prefixes[0], "198.19.11.0/24")
		for i := 1; i < 3; i++ {
			waitUntil(t, sp[i], 5*time.Second, addrs[i]+" learns A's prefixes again", havePaths(sp[i], append(wantPaths(i), path("198.19.11.0/24", addrs[0], addrs[0]))...))
		}
		// A new next hop replaces the path.
		advertise(t, sp[0], "198.18.0.9", prefixes[0], "198.19.11.0/24")
		waitUntil(t, sp[1], 5*time.Second, "B sees A's new next hop", havePaths(sp[1],
			path(prefixes[0], "198.18.0.9", addrs[0]), path(prefixes[2], addrs[2], addrs[2]), path("198.19.11.0/24", "198.18.0.9", addrs[0])))
		advertise(t, sp[0], addrs[0], prefixes[0])
		waitUntil(t, sp[1], 5*time.Second, "B back to the start", havePaths(sp[1], wantPaths(1)...))
	})

	t.Run("peer removed", func(t *testing.T) {
		// B drops C: the session ends (C sees B's NOTIFICATION, graceful
		// restart or not) and each loses the other's prefix.
		setPeers(t, sp[1], nodePeer(addrs[0]))
		waitUntil(t, sp[1], 5*time.Second, "B without C's prefix", havePaths(sp[1], path(prefixes[0], addrs[0], addrs[0])))
		waitUntil(t, sp[2], 5*time.Second, "C without B's prefix", havePaths(sp[2], path(prefixes[0], addrs[0], addrs[0])))
		if ps, _ := sp[1].Peers(t.Context()); len(ps) != 1 || ps[0].Address != netip.MustParseAddr(addrs[0]) {
			t.Errorf("B's peers %+v", ps)
		}
		if st, ok := peerStateOf(t, sp[2], addrs[1]); !ok || st.Established() {
			t.Errorf("C's state of B: %+v (configured %v)", st, ok)
		}
	})
}

func TestKernelRouteReflector(t *testing.T) {
	requireNetns(t)
	rr, c1, c2 := "198.18.1.1", "198.18.1.2", "198.18.1.3"
	addLo(t, rr, c1, c2)
	g := globalAt(rr)
	g.ClusterID = netip.MustParseAddr(rr)
	reflector := startSpeaker(t, g)
	client1, client2 := startSpeaker(t, globalAt(c1)), startSpeaker(t, globalAt(c2))
	advertise(t, client1, c1, "198.19.12.0/24")
	advertise(t, client2, c2, "198.19.13.0/24")
	rrClient := func(a string) model.Peer { p := nodePeer(a); p.RRClient = true; return p }
	setPeers(t, reflector, rrClient(c1), rrClient(c2))
	// The clients peer with the reflector only.
	setPeers(t, client1, nodePeer(rr))
	setPeers(t, client2, nodePeer(rr))

	waitUntil(t, reflector, sessionTimeout, "reflector learns both", havePaths(reflector,
		path("198.19.12.0/24", c1, c1), path("198.19.13.0/24", c2, c2)))
	// Reflected paths keep their originator's next hop; they come from
	// the reflector.
	waitUntil(t, client1, 5*time.Second, "client 1 learns client 2's prefix", havePaths(client1, path("198.19.13.0/24", c2, rr)))
	waitUntil(t, client2, 5*time.Second, "client 2 learns client 1's prefix", havePaths(client2, path("198.19.12.0/24", c1, rr)))
}
