//go:build kernel

package bgp

import (
	"fmt"
	"testing"
	"time"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// neverUp is how long a session with a wrong password must stay down:
// two connect retries of both sides.
const neverUp = 2*connectRetry + 2*time.Second

// TestKernelMD5 checks TCP MD5 on both ends of a session: A listens, B and
// C cannot be dialled (no listener), so A is the passive side (its
// listening socket needs B's key: the MPTCP pitfall) and B the active one.
// C has the wrong password and must never come up while B does.
func TestKernelMD5(t *testing.T) {
	requireNetns(t)
	a, b, c := "198.18.2.1", "198.18.2.2", "198.18.2.3"
	addLo(t, a, b, c)
	dialOnly := func(addr string) model.Global { g := globalAt(addr); g.ListenPort = -1; return g }
	sa := startSpeaker(t, globalAt(a))
	sb, sc := startSpeaker(t, dialOnly(b)), startSpeaker(t, dialOnly(c))
	withPassword := func(p model.Peer, pw string) model.Peer { p.Password = pw; return p }
	setPeers(t, sa, withPassword(nodePeer(b), "s3cret"), withPassword(nodePeer(c), "s3cret"))
	setPeers(t, sb, withPassword(nodePeer(a), "s3cret"))
	setPeers(t, sc, withPassword(nodePeer(a), "wrong"))
	start := time.Now()

	// Until B is up and neverUp has passed, C must never be established,
	// seen from either end.
	waitUntil(t, sa, sessionTimeout+neverUp, "B up and C never up", func() (bool, string) {
		for _, st := range []struct {
			s    *Speaker
			peer string
		}{{sa, c}, {sc, a}} {
			if p, _ := peerStateOf(t, st.s, st.peer); p.Established() {
				t.Fatalf("session with the wrong password established after %v", time.Since(start))
			}
		}
		pb, _ := peerStateOf(t, sa, b)
		return pb.Established() && time.Since(start) > neverUp, fmt.Sprintf("A's state of B: %s", pb.State)
	})
	waitUntil(t, sb, 5*time.Second, "B's side up", established(t, sb, false, a))

	// Dropping the password on both ends: GoBGP's DeletePeer leaves the
	// key on A's listener, which the speaker works around; without that,
	// B's SYNs without signature would be dropped.
	setPeers(t, sa, nodePeer(b))
	setPeers(t, sb, nodePeer(a))
	waitUntil(t, sa, sessionTimeout, "B up without password", established(t, sa, false, b))
	// And adding one again.
	setPeers(t, sa, withPassword(nodePeer(b), "0ther"))
	setPeers(t, sb, withPassword(nodePeer(a), "0ther"))
	waitUntil(t, sa, sessionTimeout, "B up with a new password", established(t, sa, false, b))
}
