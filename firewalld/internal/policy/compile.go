package policy

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// Input is what the compiler reads: the cluster's objects as the informers
// hold them, and the node.
type Input struct {
	// Node is this node's name: its pods are the ones policed.
	Node string
	// PodCIDRs are the node's pod CIDRs (for the pending protection).
	PodCIDRs   []netip.Prefix
	Pods       []*corev1.Pod
	Namespaces []*corev1.Namespace
	Policies   []*networkingv1.NetworkPolicy
}

// Group is a target group: the local pods the same policies isolate in one
// direction (with the same named ports).
type Group struct {
	ID        model.ID
	Direction model.Direction
	// Policies are the namespace/name of the policies, sorted.
	Policies []string
	// Pods are the namespace/name of the local pods in the group, sorted.
	Pods []string
}

// Stats counts what a compile saw.
type Stats struct {
	// Policies that could be compiled, and of them the ones selecting a
	// pod of this node.
	Policies, LocalPolicies int
	// SelectedPods: pods of this node isolated in at least one direction.
	SelectedPods int
	// Rules of the local policies.
	Rules                           int
	Identities, Peers, Groups, Pods int
}

// Result is the outcome of Compile.
type Result struct {
	// Datapath is the whole desired content. A Compiler's result is its
	// own live copy: valid until its next Compile (Clone it to keep it).
	Datapath *model.Datapath
	// Delta is what changed since the Compiler's previous result; Full
	// means there is no previous result (the first compile, or the node
	// changed) and Delta holds everything.
	Delta    *model.Delta
	Full     bool
	Groups   []Group
	Problems []Problem
	Stats    Stats
}

// Compile computes the datapath that enforces the policies on the node's
// pods. It is pure: the same input gives the same result, IDs included.
func Compile(in Input) Result { return NewCompiler().Compile(in) }

// Compiler compiles again and again, in proportion to what changed since
// the last time: informers hand out a new object for every change, so an
// unchanged pod or policy is the same pointer, and only new pointers are
// parsed and only what they touch is recomputed: the addresses they claim,
// the identities they add or drop, the target groups when a local pod or a
// policy changed, and the elements of the groups whose inputs changed. Its
// results equal Compile's on the same input (the tests hold it to that),
// and each comes with the Delta from the previous one. Not safe for
// concurrent use.
type Compiler struct {
	gen  uint64
	node string
	dp   *model.Datapath

	pods     map[*corev1.Pod]*podEntry
	claims   map[netip.Addr][]*podInfo
	owner    map[netip.Addr]*podInfo
	local    map[*podInfo]struct{}
	troubled map[*podInfo]struct{} // pods with problems
	idents   map[string]*identity
	visible  int // pods with addresses

	policies map[*networkingv1.NetworkPolicy]*policyEntry
	byNS     map[string][]*compiledPolicy
	peers    peerTable

	// ids numbers target groups, peerIDs peer sets.
	ids, peerIDs *idSpace
	nsLabels     map[string]map[string]string
	matches      map[*peer]matchEntry
	groups       map[string]*targetGroup
	chainCache   map[string]*chainCache
	variants     map[string]*variant
	byIdent      map[*identity][]*variant
	ownerChanges []ownerChange
	// Versions of the identity set and the namespace labels: cached
	// matches and rules are valid while these stay the same.
	identVer, nsVer uint64
	// identVerStart is identVer before this compile; addedIdents and
	// goneIdents are the identities this compile made and dropped.
	identVerStart           uint64
	addedIdents, goneIdents []*identity

	stats     Stats
	groupList []Group
}

type podEntry struct {
	info  *podInfo // nil: a pod policies do not see
	stamp uint64
}

type policyEntry struct {
	p     *compiledPolicy
	stamp uint64
}

// NewCompiler returns a Compiler with nothing compiled yet.
func NewCompiler() *Compiler {
	return &Compiler{ids: newIDSpace(), peerIDs: newIDSpace(), idents: map[string]*identity{}, peers: peerTable{},
		pods: map[*corev1.Pod]*podEntry{}, claims: map[netip.Addr][]*podInfo{}, owner: map[netip.Addr]*podInfo{},
		local: map[*podInfo]struct{}{}, troubled: map[*podInfo]struct{}{},
		policies: map[*networkingv1.NetworkPolicy]*policyEntry{}, byNS: map[string][]*compiledPolicy{},
		matches: map[*peer]matchEntry{}, groups: map[string]*targetGroup{}, chainCache: map[string]*chainCache{},
		variants: map[string]*variant{}, byIdent: map[*identity][]*variant{}}
}

// Compile compiles in, reusing what did not change since the last call.
func (cp *Compiler) Compile(in Input) Result {
	if cp.dp != nil && in.Node != cp.node {
		*cp = *NewCompiler() // another node's pods: start over
	}
	full := cp.dp == nil
	if full {
		cp.dp, cp.node = model.NewDatapath(), in.Node
	}
	cp.gen++
	cp.identVerStart, cp.addedIdents, cp.goneIdents, cp.ownerChanges = cp.identVer, nil, nil, nil
	d := model.NewDelta()
	var cidrs []netip.Prefix
	for _, p := range in.PodCIDRs {
		if m := p.Masked(); !slices.Contains(cidrs, m) {
			cidrs = append(cidrs, m)
		}
	}
	if full || !slices.Equal(cidrs, cp.dp.LocalCIDRs) {
		cp.dp.LocalCIDRs = cidrs
		c := slices.Clone(cidrs)
		d.LocalCIDRs = &c
	}
	cp.namespaces(in.Namespaces)
	targetsDirty := cp.scanPods(in.Pods)
	if cp.scanPolicies(in.Policies) || targetsDirty || full {
		cp.targets(d)
	}
	cp.peerSets(cp.chains(d), d)
	cp.stats.Identities, cp.stats.Pods, cp.stats.Peers = len(cp.idents), cp.visible, len(cp.variants)
	return Result{Datapath: cp.dp, Delta: d, Full: full, Groups: cp.groupList, Problems: cp.problems(), Stats: cp.stats}
}

// namespaces records the namespaces' labels; a change invalidates the
// cached peer matches.
func (cp *Compiler) namespaces(nss []*corev1.Namespace) {
	labels := make(map[string]map[string]string, len(nss))
	for _, ns := range nss {
		labels[ns.Name] = ns.Labels
	}
	if cp.nsLabels == nil || !maps.EqualFunc(labels, cp.nsLabels, maps.Equal) {
		cp.nsVer++
	}
	cp.nsLabels = labels
}

// problems are the problems of the pods and policies compiled.
func (cp *Compiler) problems() []Problem {
	var out []Problem
	for p := range cp.troubled {
		out = append(out, p.problems...)
	}
	for _, e := range cp.policies {
		out = append(out, e.p.problems...)
	}
	slices.SortFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Message, b.Message))
	})
	return out
}

// itoa formats a port without strconv's allocation-heavy general path.
func itoa(n uint16) string {
	var buf [5]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(buf[i:])
		}
	}
}
