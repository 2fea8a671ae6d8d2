//go:build kernel

package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/grpcserver"
	"google.golang.org/grpc"
)

// traceTimeout bounds one trace call: firewalld answers from memory.
const traceTimeout = 5 * time.Second

// errNotRunning: the firewalld a cell needs was stopped by the test.
var errNotRunning = errors.New("firewalld is not running")

// tracers are gRPC clients of each node's firewalld trace, by node index,
// dialled once per fixture.
type tracers struct {
	once    sync.Once
	err     error
	conns   []*grpc.ClientConn
	clients []nodev1.FirewallTraceServiceClient

	mu    sync.Mutex
	steps int           // steps checked
	took  time.Duration // by the checks, in all
}

// close closes the clients and adds what the checks took to ts.
func (tr *tracers) close(ts *timings) {
	for _, c := range tr.conns {
		_ = c.Close()
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	ts.add(fmt.Sprintf("trace checks (%d steps)", tr.steps), tr.took)
}

func (f *fixture) tracer(t *testing.T, node int) nodev1.FirewallTraceServiceClient {
	t.Helper()
	f.trace.once.Do(func() {
		for _, fw := range f.fw {
			conn, err := grpcserver.Dial(fw.Socket())
			if err != nil {
				f.trace.err = err
				return
			}
			f.trace.conns = append(f.trace.conns, conn)
			f.trace.clients = append(f.trace.clients, nodev1.NewFirewallTraceServiceClient(conn))
		}
	})
	if f.trace.err != nil {
		t.Fatalf("dial firewalld's trace: %v", f.trace.err)
	}
	return f.trace.clients[node]
}

// checkTraceAgrees asks, for every cell of a converged matrix, what
// `firewalld trace` says of the cell's packet, and fails t where it does
// not say what the traffic did (want: converge made the traffic match it).
// Each end that is a pod is judged by the firewalld of its node (egress
// of the source, ingress of the destination); the cell is reachable when
// every firewalld asked allows the packet. The trace is computed from the
// last sync, and converge waited for every firewalld to settle.
func (f *fixture) checkTraceAgrees(t *testing.T, what string, want *Matrix) {
	t.Helper()
	begin := time.Now()
	var (
		mu       sync.Mutex
		disagree []string
		asked    int
		skipped  int
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 32)
	)
	for _, c := range want.Cells() {
		o := want.Get(c)
		if o != Reachable && o != Blocked {
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			allowed, explain, n, err := f.traceCell(t, c)
			mu.Lock()
			defer mu.Unlock()
			asked += n
			switch {
			case errors.Is(err, errNotRunning):
				skipped++
			case err != nil:
				disagree = append(disagree, fmt.Sprintf("%s: %v", c, err))
			case allowed != (o == Reachable):
				disagree = append(disagree, fmt.Sprintf("%s: the traffic was %s, the trace says allowed=%v:\n%s", c, o, allowed, explain))
			}
		})
	}
	wg.Wait()
	f.trace.mu.Lock()
	f.trace.steps, f.trace.took = f.trace.steps+1, f.trace.took+time.Since(begin)
	f.trace.mu.Unlock()
	if len(disagree) > 0 {
		if len(disagree) > maxMismatchesShown {
			disagree = append(disagree[:maxMismatchesShown], fmt.Sprintf("... and %d more", len(disagree)-maxMismatchesShown))
		}
		t.Fatalf("%s: firewalld trace disagrees with the traffic on %d cells:\n%s", what, len(disagree), strings.Join(disagree, "\n"))
	}
	t.Logf("%s: firewalld trace agrees with the traffic on every cell (%d trace calls, %d cells of a stopped firewalld not asked, %v)",
		what, asked, skipped, time.Since(begin).Round(time.Millisecond))
}

// traceCell asks the firewalld of each pod end of c; explain is their
// answers' verdicts and reasons, for a failure.
func (f *fixture) traceCell(t *testing.T, c Cell) (allowed bool, explain string, asked int, err error) {
	req := &nodev1.FirewallTraceServiceTraceRequest{ToPort: uint32(c.Port.Number), ToProtocol: protocolOf(c.Port)}
	_, dst, _ := f.ends(c)
	if c.From.IsPod() {
		req.Source = &nodev1.FirewallTraceServiceTraceRequest_FromPod{FromPod: c.From.Namespace + "/" + c.From.Name}
	} else {
		req.Source = &nodev1.FirewallTraceServiceTraceRequest_FromIp{FromIp: f.sourceIP(c).String()}
	}
	if c.To.IsPod() {
		req.Destination = &nodev1.FirewallTraceServiceTraceRequest_ToPod{ToPod: c.To.Namespace + "/" + c.To.Name}
	} else {
		req.Destination = &nodev1.FirewallTraceServiceTraceRequest_ToIp{ToIp: dst.String()}
	}
	var nodes []int
	if c.From.IsPod() {
		nodes = append(nodes, nodeOf(c.From))
	}
	if c.To.IsPod() && (len(nodes) == 0 || nodeOf(c.To) != nodes[0]) {
		nodes = append(nodes, nodeOf(c.To))
	}
	for _, n := range nodes {
		if !f.fw[n].Running() {
			// Stopped by the test (its table stays in force): nobody to
			// ask.
			return false, "", 0, errNotRunning
		}
	}
	allowed = true
	var b strings.Builder
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), traceTimeout)
		resp, err := f.tracer(t, n).Trace(ctx, req)
		cancel()
		if err != nil {
			return false, "", asked, fmt.Errorf("trace on %s: %w", f.nodes[n].Name, err)
		}
		asked++
		fmt.Fprintf(&b, "    %s: %s (egress %s, ingress %s)", resp.GetNodeName(), resp.GetVerdict(), resp.GetEgress().GetCheck(), resp.GetIngress().GetCheck())
		for _, r := range resp.GetReasons() {
			fmt.Fprintf(&b, "; %s: %s", r.GetCode(), r.GetMessage())
		}
		b.WriteString("\n")
		allowed = allowed && resp.GetVerdict() == nodev1.FirewallTraceVerdict_FIREWALL_TRACE_VERDICT_ALLOWED
	}
	return allowed, b.String(), asked, nil
}

// sourceIP is the address a cell's packet leaves from when its source is
// not a pod: the world's, or the node's of the destination pod.
func (f *fixture) sourceIP(c Cell) netip.Addr {
	if c.From.Kind == WorldPeer {
		return f.topo.World().IP
	}
	return f.nodes[nodeOf(c.To)].IP
}

// protocolOf is p's protocol in the API's words.
func protocolOf(p Port) nodev1.Protocol {
	switch p.Protocol {
	case "UDP":
		return nodev1.Protocol_PROTOCOL_UDP
	case "SCTP":
		return nodev1.Protocol_PROTOCOL_SCTP
	}
	return nodev1.Protocol_PROTOCOL_TCP
}
