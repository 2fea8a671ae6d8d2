//go:build kernel

package nft

// expectAttempt is expect (traffic_kernel_test.go) for connection
// attempts a probe cannot make: SCTP, or TCP to a virtual IP that IPVS
// forwards to a pod. Judge is asked about the packet as the table sees
// it (for a VIP: after IPVS, from the client to the pod).

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// attempt is one connection attempt: what the table sees (src, dst,
// proto, port) and how to make it (try, which returns the echo's answer).
type attempt struct {
	what     string // for messages, e.g. "sctp 198.18.0.2 → 198.18.128.2:80"
	src, dst netip.Addr
	proto    uint8
	port     uint16
	try      func(timeout time.Duration) (string, error)
}

// expectAttempt checks that a gets through exactly when d.Judge says so
// (want): an answer from a server that saw a.src, or none within
// dropTimeout and the drop counted by the chain that should drop it.
func expectAttempt(t *testing.T, tb *Table, d *model.Datapath, a attempt, want model.Verdict) {
	t.Helper()
	if got := d.Judge(a.src, a.dst, a.proto, a.port); got != want {
		t.Fatalf("%s: Judge says %v, the test expects %v", a.what, got, want)
	}
	before := counters(t, tb)
	timeout := answerTimeout
	if want != model.Allowed {
		timeout = dropTimeout
	}
	start := time.Now()
	answer, err := a.try(timeout)
	switch {
	case want == model.Allowed && err != nil:
		t.Fatalf("%s: %v, want an answer (%v)", a.what, err, want)
	case want == model.Allowed:
		if !strings.HasSuffix(answer, " "+a.src.String()) {
			t.Fatalf("%s: answer %q, want the server to see %v", a.what, answer, a.src)
		}
		t.Logf("%s: answered %q in %v", a.what, answer, time.Since(start).Round(time.Millisecond))
		return
	case err == nil:
		t.Fatalf("%s: answered %q, want %v", a.what, answer, want)
	}
	after := counters(t, tb)
	var b, c Counter
	switch want {
	case model.DeniedPending:
		b, c = before.Pending, after.Pending
	case model.DeniedIngress:
		key := model.GroupKey{Direction: model.Ingress, ID: d.IngressGroup[a.dst]}
		b, c = before.Denied[key], after.Denied[key]
	case model.DeniedEgress:
		key := model.GroupKey{Direction: model.Egress, ID: d.EgressGroup[a.src]}
		b, c = before.Denied[key], after.Denied[key]
	}
	t.Logf("%s: no answer (%v); %v counted %d packets", a.what, err, want, c.Packets-b.Packets)
	if c.Packets <= b.Packets || c.Bytes <= b.Bytes {
		t.Fatalf("%s: no answer, but the %v counter did not count it (%+v → %+v)", a.what, want, b, c)
	}
}
