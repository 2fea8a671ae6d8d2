//go:build kernel

package policy

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/netns"
)

// watchInterval is how often a leak watch starts a probe: each probe
// lasts up to probeTimeout, so about probeTimeout/watchInterval overlap
// and every moment of the watch is covered by a connection attempt.
const watchInterval = 20 * time.Millisecond

// minProbesBeforeIP is how many probes each watch stream starts while the
// pod exists on its node but its IP is not in the API yet: the window in
// which firewalld cannot know the address belongs to a selected pod.
const minProbesBeforeIP = 25

// testNewPodFailClosed: a pod created after the policy that selects it is
// never reachable on a port the policy forbids, from the moment its network
// exists (CNI ADD) through the time firewalld learns its IP, and after.
func (f *fixture) testNewPodFailClosed(t *testing.T) {
	f.requireEnforcement(t)
	f.timeCase(t, "new-pod-fail-closed")
	t.Log("a policy admits pods labelled pod=d on tcp/81 only; then x/d is created as a kubelet does (the Pod " +
		"object first, then its network, then its IP in the status): tcp/80 and udp/80 of x/d are probed from the " +
		"same node, the other node and the world all along, and must never answer; tcp/81 answering tells that " +
		"firewalld knows x/d")
	t.Cleanup(func() { f.reset(t) })
	ctx, cancel := stepContext(t, 2*convergeTimeout)
	defer cancel()

	d := Pod("x", "d")
	node := f.nodes[0]
	pol := netpol("x", "d-tcp-81-only", labels("pod", "d"), ingressRules(anything().on(port(TCP(81)))))
	// The model's matrix does not change (no pod is labelled pod=d): the
	// convergence waits for firewalld to have the policy.
	f.step(t, step{name: "policy before the pod", policies: policies(pol)}, f.expected(step{policies: policies(pol)}))

	// 1. The Pod object, as the kubelet finds it: labels, node, no IP.
	obj := controlplane.NewPod(d.Namespace, d.Name, node.Name, defaultPodLabels(d))
	obj.Spec.Containers = podContainers(d)
	if _, err := controlplane.CreatePod(ctx, f.admin, obj); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := controlplane.DeletePod(context.WithoutCancel(ctx), f.admin, d.Namespace, d.Name); err != nil {
			t.Errorf("delete pod %s: %v", d, err)
		}
	})
	// 2. Its sandbox: network namespace and CNI ADD, servers at once.
	pod, err := f.topo.CreatePod(ctx, node, netnsName(d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pod.Delete(); err != nil {
			t.Errorf("delete the network of %s: %v", d, err)
		}
	})
	for _, p := range []Port{TCP(80), TCP(81), UDP(80)} {
		if err := serve1(pod.NetNS, p); err != nil {
			t.Fatal(err)
		}
	}
	// 3. Watch the forbidden ports from now on.
	var streams []*watchStream
	for _, src := range []Peer{Pod("x", "a"), Pod("x", "c"), World()} {
		for _, p := range []Port{TCP(80), UDP(80)} {
			streams = append(streams, &watchStream{from: src, src: f.source(src), port: p})
		}
	}
	w := startLeakWatch(ctx, pod.IP, streams)
	defer w.stop()
	if err := w.waitLaunched(ctx, minProbesBeforeIP); err != nil {
		t.Fatal(err)
	}
	// 4. The kubelet writes the IP: firewalld can learn it is x/d's.
	published := time.Now()
	if _, err := controlplane.SetPodRunning(ctx, f.admin, d.Namespace, d.Name, pod.IP); err != nil {
		t.Fatal(err)
	}
	// 5. Until tcp/81 answers, firewalld does not know x/d.
	known, err := f.waitAnswer(ctx, f.pods[Pod("x", "c")].NetNS, pod.IP, TCP(81))
	if err != nil {
		t.Fatalf("x/d's tcp/81 never answered after its IP was published: %v", err)
	}
	knownAfter := known.Sub(published)
	// The kubelet still reaches it on the forbidden port.
	if _, err := dial(ctx, node.NetNS, pod.IP, TCP(80)); err != nil {
		t.Errorf("the kubelet (%s) cannot reach x/d on tcp/80: %v", node.Name, err)
	}
	// 6. A full probe timeout more, then wait for the probes in flight.
	if err := w.waitLaunched(ctx, w.minLaunched()+int64(probeTimeout/watchInterval)); err != nil {
		t.Fatal(err)
	}
	w.stop()
	if leaks := w.leaks(); leaks != "" {
		t.Fatalf("x/d answered on a port its policy forbids:\n%s", leaks)
	}
	t.Logf("%d probes of tcp/80 and udp/80 from x/a (same node), x/c (other node) and the world over %v, none answered; "+
		"the IP was published after %v of probing and tcp/81 answered %v later",
		w.total(), time.Since(w.begin).Round(time.Millisecond), published.Sub(w.begin).Round(time.Millisecond), knownAfter.Round(time.Millisecond))
}

// source is the namespace probes from p leave (pods and the world).
func (f *fixture) source(p Peer) *netns.NetNS {
	if p.IsPod() {
		return f.pods[p].NetNS
	}
	return f.topo.World().NetNS
}

// waitAnswer probes until dst answers on p, and returns when it first did.
func (f *fixture) waitAnswer(ctx context.Context, src *netns.NetNS, dst netip.Addr, p Port) (time.Time, error) {
	// Attempts start every watchInterval, each alone, so the answer's time
	// is not that of a retransmission (TCP resends a dropped SYN after a
	// second): the earliest attempt that got through tells when the path
	// opened, to within watchInterval.
	ctx, cancel := context.WithTimeout(ctx, convergeTimeout)
	defer cancel()
	answered := make(chan time.Time, 1)
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		start := time.Now()
		wg.Go(func() {
			actx, acancel := context.WithTimeout(ctx, 4*watchInterval)
			defer acancel()
			if _, err := dial(actx, src, dst, p); err == nil {
				select {
				case answered <- start:
				default:
				}
			}
		})
		select {
		case t := <-answered:
			cancel()
			return t, nil
		case <-tick.C:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// watchStream probes one source and port again and again.
type watchStream struct {
	from Peer
	src  *netns.NetNS
	port Port

	launched atomic.Int64
	mu       sync.Mutex
	answers  []string
}

// leakWatch starts a probe of every stream every watchInterval, each
// lasting up to probeTimeout, and records every answer: a leak.
type leakWatch struct {
	begin   time.Time
	dst     netip.Addr
	streams []*watchStream
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

func startLeakWatch(ctx context.Context, dst netip.Addr, streams []*watchStream) *leakWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &leakWatch{begin: time.Now(), dst: dst, streams: streams, cancel: cancel}
	for _, s := range streams {
		w.wg.Go(func() {
			tick := time.NewTicker(watchInterval)
			defer tick.Stop()
			for {
				s.launched.Add(1)
				w.wg.Go(func() {
					// Not bound by ctx: a probe in flight when the watch
					// stops still counts.
					a, err := dial(context.WithoutCancel(ctx), s.src, dst, s.port)
					if err == nil {
						s.mu.Lock()
						s.answers = append(s.answers, fmt.Sprintf("%s → x/d %s at +%v: %v", s.from, s.port, time.Since(w.begin).Round(time.Millisecond), a))
						s.mu.Unlock()
					}
				})
				select {
				case <-tick.C:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	return w
}

// minLaunched is the fewest probes any stream has started.
func (w *leakWatch) minLaunched() int64 {
	n := int64(-1)
	for _, s := range w.streams {
		if l := s.launched.Load(); n < 0 || l < n {
			n = l
		}
	}
	return n
}

// waitLaunched waits until every stream has started at least n probes.
func (w *leakWatch) waitLaunched(ctx context.Context, n int64) error {
	tick := time.NewTicker(watchInterval)
	defer tick.Stop()
	for w.minLaunched() < n {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d probes per stream: %w", n, ctx.Err())
		}
	}
	return nil
}

// stop stops starting probes and waits for those in flight.
func (w *leakWatch) stop() {
	w.once.Do(func() {
		w.cancel()
		w.wg.Wait()
	})
}

func (w *leakWatch) total() int64 {
	var n int64
	for _, s := range w.streams {
		n += s.launched.Load()
	}
	return n
}

// leaks lists the answers (the first few of each stream), "" when none.
func (w *leakWatch) leaks() string {
	const shown = 5
	var b strings.Builder
	for _, s := range w.streams {
		s.mu.Lock()
		for i, a := range s.answers {
			if i == shown {
				fmt.Fprintf(&b, "  ... and %d more from %s on %s\n", len(s.answers)-shown, s.from, s.port)
				break
			}
			b.WriteString("  " + a + "\n")
		}
		s.mu.Unlock()
	}
	return b.String()
}
