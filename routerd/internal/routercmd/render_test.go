package routercmd

import (
	"strings"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func TestWritePeersUptimeFromTheAnswersTime(t *testing.T) {
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	peer := func(name string, since time.Time) *nodev1.RouterPeer {
		p := &nodev1.RouterPeer{Session: &nodev1.BGPPeer{Name: name, Address: "198.18.0.11", Kind: "node", State: "established", Md5: true}}
		if !since.IsZero() {
			p.Session.Since = timestamppb.New(since)
		}
		return p
	}
	var b strings.Builder
	err := WritePeers(&b, &nodev1.RouterServicePeersResponse{Time: timestamppb.New(at), Sync: &nodev1.RouterSync{InitialSyncDone: true},
		Peers: []*nodev1.RouterPeer{peer("up", at.Add(-90*time.Second)), peer("never", time.Time{}), peer("skewed", at.Add(time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	// name → the FOR, MD5, GR and EOR columns.
	got := map[string]string{}
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(line); len(f) == 16 {
			got[f[0]] = strings.Join([]string{f[5], f[13], f[14], f[15]}, " ")
		}
	}
	for name, want := range map[string]string{"up": "1m30s yes no no", "never": "- yes no no", "skewed": "- yes no no"} {
		if got[name] != want {
			t.Errorf("%s: %q, want %q:\n%s", name, got[name], want, b.String())
		}
	}
}

func TestWriteRoutesSaysWhatTheKernelLacks(t *testing.T) {
	var b strings.Builder
	err := WriteRoutes(&b, &nodev1.RouterServiceRoutesResponse{Sync: &nodev1.RouterSync{Error: "routes: boom"}, Learned: []*nodev1.LearnedRoute{
		{Prefix: "198.18.129.0/24", NextHop: "198.18.0.11", Via: "direct", Link: "eth0", Reason: &nodev1.TraceReason{Code: "Routed", Message: "m"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"that sync failed: routes: boom", "initial BGP sync not done", "eth0  MISSING  Routed\n", "Advertised (0):"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
