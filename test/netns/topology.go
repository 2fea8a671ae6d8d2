package netns

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Topology is a throwaway cluster network: a world namespace with the
// underlay bridge, nodes attached to it, and pods attached to their node by
// the real CNI plugins. Its methods are safe for concurrent use.
type Topology struct {
	// ID is the run id; every artefact of the topology is under Dir.
	ID string
	// Dir is the run directory, <state dir>/nnt-<ID>.
	Dir string

	opts      Options
	cniBinDir string
	world     *World
	nodes     []*Node

	mu     sync.Mutex
	closed bool
	pods   map[string]*Pod          // by name, including ones being created or deleted
	seq    int                      // makes container IDs unique across re-creations
	used   map[*Node]map[string]int // pod IPs handed out per node, to flush stale neighbours on reuse
}

// New builds a topology for a test and tears it down when the test ends,
// whether it passed or not. It skips the test when not running as root and
// fails it when the topology cannot be built.
func New(t testing.TB, opts Options) *Topology {
	t.Helper()
	SkipUnlessRoot(t)
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) {
			t.Helper()
			t.Logf(format, args...)
		}
	}
	if opts.Label == "" {
		opts.Label = t.Name()
	}
	topo, err := Create(opts)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	t.Cleanup(func() {
		if err := topo.Close(); err != nil {
			t.Errorf("netns: teardown: %v", err)
		}
	})
	return topo
}

// SkipUnlessRoot skips a test that needs network namespaces when the test
// does not run as root.
func SkipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netns: needs root (network namespaces, bind mounts, CNI plugins); run as root: go test -tags kernel ./test/netns/...")
	}
}

// Create builds a topology; the caller must Close it. Before building, it
// removes what crashed runs left in the state directory.
func Create(opts Options) (_ *Topology, err error) {
	start := time.Now()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if err := checkNodes(opts.nodes(), opts.RoutedNodes); err != nil {
		return nil, err
	}
	stateDir, err := opts.stateDir()
	if err != nil {
		return nil, err
	}
	removed, err := RemoveLeftovers(stateDir)
	for _, d := range removed {
		logf("netns: removed leftovers of a dead run: %s", d)
	}
	if err != nil {
		return nil, fmt.Errorf("removing leftovers: %w", err)
	}
	// Resolve (maybe build) the plugins before making anything, so a
	// missing toolchain fails fast and leaves nothing behind.
	binDir, err := resolveCNIBinDir(opts.CNIBinDir)
	if err != nil {
		return nil, err
	}
	id, err := newRunID()
	if err != nil {
		return nil, err
	}
	label := opts.Label
	if label == "" {
		label = filepath.Base(os.Args[0])
	}
	o, err := selfOwner(label)
	if err != nil {
		return nil, err
	}
	dir, err := createRunDir(stateDir, id, o)
	if err != nil {
		return nil, err
	}
	t := &Topology{
		ID: runPrefix + id, Dir: dir, opts: opts, cniBinDir: binDir,
		pods: map[string]*Pod{}, used: map[*Node]map[string]int{},
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, t.Close())
		}
	}()
	for _, d := range []string{"netns", "nodes", "cni-cache"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	if t.world, err = newWorld(t); err != nil {
		return nil, err
	}
	for i := range opts.nodes() {
		n, err := newNode(t, i)
		if err != nil {
			return nil, err
		}
		t.nodes = append(t.nodes, n)
	}
	logf("netns: topology %s (%d nodes) up in %v; namespaces pinned in %s/netns", t.ID, len(t.nodes), time.Since(start).Round(time.Millisecond), dir)
	return t, nil
}

// netnsPath is where the namespace called name is pinned.
func (t *Topology) netnsPath(name string) string { return filepath.Join(t.Dir, "netns", name) }

// World is the namespace that holds the underlay bridge.
func (t *Topology) World() *World { return t.world }

// Node returns node i (0-based).
func (t *Topology) Node(i int) *Node { return t.nodes[i] }

// Nodes returns all nodes in index order.
func (t *Topology) Nodes() []*Node { return slices.Clone(t.nodes) }

// Pod returns the live pod called name, or nil.
func (t *Topology) Pod(name string) *Pod {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.pods[name]; p != nil && p.state == podReady {
		return p
	}
	return nil
}

// Pods returns the live pods, sorted by name.
func (t *Topology) Pods() []*Pod {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ps []*Pod
	for _, p := range t.pods {
		if p.state == podReady {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b *Pod) int { return strings.Compare(a.Name, b.Name) })
	return ps
}

// AddPod creates a pod on node n and fails the test when it cannot.
func (t *Topology) AddPod(tb testing.TB, n *Node, name string) *Pod {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cniTimeout)
	defer cancel()
	p, err := t.CreatePod(ctx, n, name)
	if err != nil {
		tb.Fatalf("netns: %v", err)
	}
	return p
}

// RouteAllPodCIDRs gives every node a static route to every other node's
// pod CIDR via that node's underlay address: pod-to-pod routing without
// routerd. Nodes on different subnets (Options.RoutedNodes) need a tunnel,
// which this does not make: it fails then.
func (t *Topology) RouteAllPodCIDRs() error {
	for _, n := range t.nodes {
		for _, m := range t.nodes {
			if n == m {
				continue
			}
			if n.Routed != m.Routed {
				return fmt.Errorf("netns: %s and %s are on different subnets: their pods need a tunnel", n.Name, m.Name)
			}
			if err := n.AddRoute(m.PodCIDR, m.IP); err != nil {
				return err
			}
		}
	}
	return nil
}

// FlushConntrack flushes the conntrack table of every namespace of the
// topology (world, nodes, pods): call it between the steps of a policy test.
func (t *Topology) FlushConntrack() error {
	var errs []error
	for _, ns := range t.namespaces() {
		errs = append(errs, ns.FlushConntrack())
	}
	return errors.Join(errs...)
}

func (t *Topology) namespaces() []*NetNS {
	nss := []*NetNS{t.world.NetNS}
	for _, n := range t.nodes {
		nss = append(nss, n.NetNS)
	}
	for _, p := range t.Pods() {
		nss = append(nss, p.NetNS)
	}
	return nss
}

// Close tears the topology down: echo servers stop, every namespace is
// unpinned (the kernel then frees it with all links, routes and sockets in
// it) and the run directory is removed. Pods are not sent CNI DEL: their
// nodes, whose state DEL would clean, go away as a whole. Close is
// idempotent.
func (t *Topology) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	var pods []*Pod
	for _, p := range t.pods {
		// A pod still being created is finished off by CreatePod, which
		// sees closed; its pin is unmounted below in any case.
		if p.state != podCreating {
			pods = append(pods, p)
		}
	}
	t.mu.Unlock()

	var errs []error
	for _, p := range pods {
		errs = append(errs, p.destroy())
	}
	for _, n := range t.nodes {
		errs = append(errs, n.destroy())
	}
	if t.world != nil {
		errs = append(errs, t.world.destroy())
	}
	// Whatever is still mounted below the run directory (a pod half made
	// when an error struck) is unmounted here.
	errs = append(errs, removeRunDir(t.Dir))
	return errors.Join(errs...)
}
