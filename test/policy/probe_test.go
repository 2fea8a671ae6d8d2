//go:build kernel

package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/nodenet/nodenet/test/netns"
	"github.com/nodenet/nodenet/test/netns/echo"
)

// maxParallelProbes bounds the probes in flight. A matrix has 117 cells of
// 6 ports; denied probes each wait probeTimeout, so they must overlap for a
// round to last about one timeout. Each probe runs its socket set-up on an
// OS thread of its own (NetNS.Do), hence a bound.
const maxParallelProbes = 512

// observe probes every cell of want at once, each within probeTimeout, and
// returns what it saw. Cells want skips are skipped, not probed.
func (f *fixture) observe(ctx context.Context, want *Matrix) *Matrix {
	got := NewMatrix(f.model, want.Ports)
	cells := want.Cells()
	type result struct {
		o    Outcome
		note string
	}
	results := make([]result, len(cells))
	sem := make(chan struct{}, maxParallelProbes)
	var wg sync.WaitGroup
	for i, c := range cells {
		if want.Get(c) == Skipped {
			results[i] = result{Skipped, want.Note(c)}
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			o, note := f.probe(ctx, c)
			results[i] = result{o, note}
		})
	}
	wg.Wait()
	for i, c := range cells {
		got.Set(c, results[i].o, results[i].note)
	}
	return got
}

// probe sends one echo request for cell c: Reachable when the destination
// answers, Blocked on a timeout (a drop) or a refusal (a reject), Misrouted
// when someone else answers. The note says why.
func (f *fixture) probe(ctx context.Context, c Cell) (Outcome, string) {
	src, dst, name := f.ends(c)
	a, err := dial(ctx, src, dst, c.Port)
	switch {
	case errors.Is(err, echo.ErrSCTPUnsupported):
		return Skipped, err.Error()
	case err != nil:
		return Blocked, err.Error()
	case a.Name != name:
		return Misrouted, "answered by " + a.String()
	}
	return Reachable, ""
}

// dial sends one echo request from src to dst on port p, within
// probeTimeout.
func dial(ctx context.Context, src *netns.NetNS, dst netip.Addr, p Port) (echo.Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	addr := netip.AddrPortFrom(dst, uint16(p.Number))
	switch p.Protocol {
	case "TCP":
		return src.DialTCP(ctx, addr)
	case "UDP":
		return src.DialUDP(ctx, addr)
	case "SCTP":
		return src.DialSCTP(ctx, addr)
	}
	return echo.Answer{}, fmt.Errorf("probe: protocol %q", p.Protocol)
}

// ends resolves a cell: the namespace the probe leaves from, the address it
// goes to and the name that must answer. The node row is the destination
// pod's node (the kubelet), the node column the source pod's node.
func (f *fixture) ends(c Cell) (src *netns.NetNS, dst netip.Addr, name string) {
	switch c.From.Kind {
	case PodPeer:
		src = f.pods[c.From].NetNS
	case WorldPeer:
		src = f.topo.World().NetNS
	case NodePeer:
		src = f.nodes[nodeOf(c.To)].NetNS
	}
	switch c.To.Kind {
	case PodPeer:
		p := f.pods[c.To]
		dst, name = p.IP, p.Name
	case WorldPeer:
		dst, name = f.topo.World().IP, f.topo.World().Name
	case NodePeer:
		n := f.nodes[nodeOf(c.From)]
		dst, name = n.IP, n.Name
	}
	return src, dst, name
}
