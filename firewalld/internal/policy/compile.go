package policy

import (
	"maps"
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	Rules                             int
	Identities, Regions, Groups, Pods int
}

// Result is the outcome of Compile.
type Result struct {
	Datapath *model.Datapath
	Groups   []Group
	Problems []Problem
	Stats    Stats
}

// Compile computes the datapath that enforces the policies on the node's
// pods. It is pure: the same input gives the same result, IDs included.
func Compile(in Input) Result { return NewCompiler().Compile(in) }

// Compiler compiles again and again, reusing what did not change since the
// last time: the parsed pods and policies (informers hand out a new object
// for every change, so an unchanged object is the same pointer), the
// identities, the identities each peer matches, the regions and each
// group's elements. Its results equal Compile's on the same input (the
// tests hold it to that). Not safe for concurrent use.
type Compiler struct {
	pods     map[*corev1.Pod]*podInfo
	policies map[*networkingv1.NetworkPolicy]*compiledPolicy
	peers    peerTable
	idents   map[string]*identity
	ids      *idSpace
	nsLabels map[string]map[string]string
	regions  []region
	blocks   string
	matches  map[*peer]matchEntry
	groups   map[string]*groupElems
	// Versions of the identity set, the namespace labels and the regions:
	// cached matches and elements are valid while these stay the same.
	identVer, nsVer, regionVer uint64
}

// NewCompiler returns a Compiler with nothing cached.
func NewCompiler() *Compiler {
	return &Compiler{ids: newIDSpace(), idents: map[string]*identity{}, peers: peerTable{},
		matches: map[*peer]matchEntry{}, groups: map[string]*groupElems{}}
}

// Compile is Compile with the compiler's caches.
func (cp *Compiler) Compile(in Input) Result {
	var ps problemList
	c := &compiler{cp: cp, dp: model.NewDatapath()}
	for _, p := range in.PodCIDRs {
		c.dp.LocalCIDRs = append(c.dp.LocalCIDRs, p.Masked())
	}
	cp.namespaces(in.Namespaces)
	c.pods, c.owner = cp.parsePods(in.Pods, &ps)
	c.node = in.Node
	cp.identities(c.pods)
	byNS := cp.parsePolicies(in.Policies, &ps)
	for _, list := range byNS {
		c.stats.Policies += len(list)
		slices.SortFunc(list, func(a, b *compiledPolicy) int { return strings.Compare(a.key, b.key) })
	}
	c.selectTargets(byNS)
	c.assignIDs()
	c.allow()
	c.stats.Identities, c.stats.Regions, c.stats.Pods = len(cp.idents), len(cp.regions), len(c.pods)
	c.stats.Groups = len(c.groups)
	return Result{Datapath: c.dp, Groups: c.groupList(), Problems: ps.list, Stats: c.stats}
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

// parsePods parses the pods not parsed before and gives each address to
// one pod.
func (cp *Compiler) parsePods(in []*corev1.Pod, ps *problemList) ([]*podInfo, map[netip.Addr]*podInfo) {
	next := make(map[*corev1.Pod]*podInfo, len(in))
	out := make([]*podInfo, 0, len(in))
	owner := make(map[netip.Addr]*podInfo, len(in))
	for _, p := range in {
		info, ok := cp.pods[p]
		if !ok {
			info = parsePod(p)
		}
		next[p] = info
		if info == nil {
			continue
		}
		ps.list = append(ps.list, info.problems...)
		if len(info.ips) == 0 {
			continue
		}
		out = append(out, info)
		for _, ip := range info.ips {
			if o, taken := owner[ip]; !taken || info.wins(o) {
				owner[ip] = info
			}
		}
	}
	cp.pods = next
	return out, owner
}

// identities keeps one identity per distinct key of the pods.
func (cp *Compiler) identities(pods []*podInfo) {
	next := make(map[string]*identity, len(cp.idents))
	for _, p := range pods {
		if _, ok := next[p.identKey]; ok {
			continue
		}
		id, ok := cp.idents[p.identKey]
		if !ok {
			id = &identity{key: p.identKey, namespace: p.namespace, labels: p.labels, ports: p.ports}
			cp.identVer++
		}
		next[p.identKey] = id
	}
	if len(next) != len(cp.idents) {
		cp.identVer++ // some went away
	}
	cp.idents = next
}

// parsePolicies parses the policies not parsed before, by namespace.
func (cp *Compiler) parsePolicies(in []*networkingv1.NetworkPolicy, ps *problemList) map[string][]*compiledPolicy {
	next := make(map[*networkingv1.NetworkPolicy]*compiledPolicy, len(in))
	peers := peerTable{}
	byNS := map[string][]*compiledPolicy{}
	for _, np := range in {
		p, ok := cp.policies[np]
		if !ok {
			p = parsePolicy(np, cp.peers)
		}
		next[np] = p
		ps.list = append(ps.list, p.problems...)
		if p.selector == nil {
			continue // its podSelector is invalid: it selects nothing
		}
		for d := range p.rules {
			for _, r := range p.rules[d] {
				for _, pe := range r.peers {
					peers[pe.key] = pe
				}
			}
		}
		byNS[p.namespace] = append(byNS[p.namespace], p)
	}
	cp.policies, cp.peers = next, peers
	for pe := range cp.matches {
		if peers[pe.key] != pe {
			delete(cp.matches, pe)
		}
	}
	return byNS
}

type compiler struct {
	cp    *Compiler
	dp    *model.Datapath
	node  string
	pods  []*podInfo
	owner map[netip.Addr]*podInfo
	// groups by key, and each local pod's group per direction.
	groups map[string]*targetGroup
	stats  Stats
}

// targetGroup is a Group while compiling.
type targetGroup struct {
	key      string
	dir      model.Direction
	policies []*compiledPolicy
	// ports are the named ports of the group's pods that its rules name
	// (ingress; egress names resolve on the peer).
	ports map[string]uint16
	pods  []*podInfo
}

// selectTargets finds the policies selecting each local pod and forms the
// target groups.
func (c *compiler) selectTargets(byNS map[string][]*compiledPolicy) {
	c.groups = map[string]*targetGroup{}
	local := map[*compiledPolicy]bool{}
	for _, p := range c.pods {
		if p.node != c.node {
			continue
		}
		for _, ip := range p.ips {
			if c.owner[ip] == p {
				c.dp.KnownLocal[ip] = struct{}{}
			}
		}
		set := labels.Set(p.labels)
		var selecting []*compiledPolicy
		for _, pol := range byNS[p.namespace] {
			if pol.selector.Matches(set) {
				selecting = append(selecting, pol)
				local[pol] = true
			}
		}
		isolated := false
		for _, dir := range []model.Direction{model.Ingress, model.Egress} {
			var in []*compiledPolicy
			for _, pol := range selecting {
				if pol.has(dir) {
					in = append(in, pol)
				}
			}
			if len(in) == 0 {
				continue // no policy of this direction: unrestricted
			}
			isolated = true
			g := c.group(dir, in, p)
			g.pods = append(g.pods, p)
		}
		if isolated {
			c.stats.SelectedPods++
		}
	}
	c.stats.LocalPolicies = len(local)
	for pol := range local {
		c.stats.Rules += len(pol.rules[0]) + len(pol.rules[1])
	}
}

// group returns the target group of pod p isolated by policies in dir.
func (c *compiler) group(dir model.Direction, policies []*compiledPolicy, p *podInfo) *targetGroup {
	var b strings.Builder
	b.WriteString("group\x00" + dir.String())
	for _, pol := range policies {
		b.WriteString("\x00" + pol.key)
	}
	// Ingress named ports resolve on the target: pods resolving them
	// differently need different elements, so they are different groups.
	var ports map[string]uint16
	if dir == model.Ingress {
		var names []string
		for _, pol := range policies {
			for _, r := range pol.dirRules(dir) {
				for _, s := range r.ports {
					if s.name != "" {
						names = append(names, s.name+"/"+string(s.protocolName))
					}
				}
			}
		}
		slices.Sort(names)
		names = slices.Compact(names)
		b.WriteByte(1)
		for _, n := range names {
			if port, ok := p.ports[n]; ok {
				if ports == nil {
					ports = map[string]uint16{}
				}
				ports[n] = port
				b.WriteString(n + "=" + itoa(port) + ",")
			}
		}
	}
	key := b.String()
	g, ok := c.groups[key]
	if !ok {
		g = &targetGroup{key: key, dir: dir, policies: policies, ports: ports}
		c.groups[key] = g
	}
	return g
}

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

// assignIDs finds the regions of the local policies' ipBlocks, numbers
// groups, identities and regions (in one space) and fills the address maps.
func (c *compiler) assignIDs() {
	cp := c.cp
	var blocks []*peer
	seen := map[*peer]bool{}
	for _, g := range c.groups {
		for _, pol := range g.policies {
			for _, r := range pol.dirRules(g.dir) {
				for _, p := range r.peers {
					if !p.selectorPeer && !seen[p] {
						seen[p] = true
						blocks = append(blocks, p)
					}
				}
			}
		}
	}
	slices.SortFunc(blocks, func(a, b *peer) int { return strings.Compare(a.key, b.key) })
	var bk strings.Builder
	for _, b := range blocks {
		bk.WriteString(b.key)
		bk.WriteByte(1)
	}
	if bk.String() != cp.blocks || cp.regionVer == 0 {
		cp.blocks, cp.regions = bk.String(), regions(blocks)
		cp.regionVer++
	}
	keys := make([]string, 0, len(c.groups)+len(cp.idents)+len(cp.regions))
	for k := range c.groups {
		keys = append(keys, k)
	}
	for k := range cp.idents {
		keys = append(keys, k)
	}
	for _, r := range cp.regions {
		keys = append(keys, r.key)
	}
	cp.ids.retain(keys)
	cp.ids.assign(keys)
	for _, g := range c.groups {
		m := c.dp.IngressGroup
		if g.dir == model.Egress {
			m = c.dp.EgressGroup
		}
		for _, p := range g.pods {
			for _, ip := range p.ips {
				if c.owner[ip] == p {
					m[ip] = cp.ids.id(g.key)
				}
			}
		}
	}
	for ip, p := range c.owner {
		c.dp.PodIdent[ip] = cp.ids.id(p.identKey)
	}
	for _, r := range cp.regions {
		c.dp.Regions = append(c.dp.Regions, model.Region{From: r.from, To: r.to, Ident: cp.ids.id(r.key)})
	}
}

// allow puts every group's elements into the datapath, computing those of
// the groups whose inputs changed.
func (c *compiler) allow() {
	cp := c.cp
	next := make(map[string]*groupElems, len(c.groups))
	for key, g := range c.groups {
		e := cp.groups[key]
		if !e.valid(g, cp) {
			e = c.groupElems(g)
		}
		next[key] = e
		target, targetAny := c.dp.IngressAllow, c.dp.IngressAny
		if g.dir == model.Egress {
			target, targetAny = c.dp.EgressAllow, c.dp.EgressAny
		}
		for _, a := range e.allow {
			target[a] = struct{}{}
		}
		for _, a := range e.any {
			targetAny[a] = struct{}{}
		}
	}
	cp.groups = next
}

// groupElems are a group's elements and what they were computed from.
type groupElems struct {
	policies                   []*compiledPolicy
	ports                      map[string]uint16
	identVer, nsVer, regionVer uint64
	gid                        model.ID
	allow                      []model.Allow
	any                        []model.AnyAllow
}

// valid: e was computed from the same policies (the same parsed objects),
// named ports, identities, namespace labels, regions and IDs as g has now.
func (e *groupElems) valid(g *targetGroup, cp *Compiler) bool {
	return e != nil && e.identVer == cp.identVer && e.nsVer == cp.nsVer && e.regionVer == cp.regionVer &&
		e.gid == cp.ids.id(g.key) && slices.Equal(e.policies, g.policies) && maps.Equal(e.ports, g.ports)
}

// groupElems computes a group's elements.
func (c *compiler) groupElems(g *targetGroup) *groupElems {
	cp := c.cp
	regionsOf := map[*peer][]model.ID{}
	for _, r := range cp.regions {
		for _, p := range r.peers {
			regionsOf[p] = append(regionsOf[p], cp.ids.id(r.key))
		}
	}
	gid := cp.ids.id(g.key)
	pairs := map[model.ID][]model.PortRange{}
	var anyPorts []model.PortRange
	add := func(id model.ID, rs []model.PortRange) { pairs[id] = append(pairs[id], rs...) }
	for _, pol := range g.policies {
		for i := range pol.dirRules(g.dir) {
			r := &pol.dirRules(g.dir)[i]
			egressNamed := g.dir == model.Egress && r.hasNamed()
			if r.allPeers {
				if !egressNamed {
					anyPorts = append(anyPorts, r.resolve(g.ports)...)
					continue
				}
				// Named ports resolve on each destination pod: per identity.
				for _, id := range cp.idents {
					add(cp.ids.id(id.key), r.resolve(id.ports))
				}
				continue
			}
			for _, p := range r.peers {
				if !p.selectorPeer {
					// Addresses that are not pods have no named ports.
					rs := r.resolve(g.ports)
					if g.dir == model.Egress {
						rs = r.resolve(nil)
					}
					for _, id := range regionsOf[p] {
						add(id, rs)
					}
					continue
				}
				var shared []model.PortRange
				if !egressNamed {
					shared = r.resolve(g.ports)
				}
				for _, id := range cp.matching(p) {
					if egressNamed {
						add(cp.ids.id(id.key), r.resolve(id.ports))
					} else {
						add(cp.ids.id(id.key), shared)
					}
				}
			}
		}
	}
	e := &groupElems{policies: g.policies, ports: g.ports, identVer: cp.identVer, nsVer: cp.nsVer, regionVer: cp.regionVer, gid: gid}
	for id, rs := range pairs {
		for _, r := range normalize(rs) {
			e.allow = append(e.allow, model.Allow{Group: gid, Ident: id, Ports: r})
		}
	}
	for _, r := range normalize(anyPorts) {
		e.any = append(e.any, model.AnyAllow{Group: gid, Ports: r})
	}
	return e
}

func (c *compiler) groupList() []Group {
	out := make([]Group, 0, len(c.groups))
	for _, g := range c.groups {
		gr := Group{ID: c.cp.ids.id(g.key), Direction: g.dir}
		for _, p := range g.policies {
			gr.Policies = append(gr.Policies, p.key)
		}
		for _, p := range g.pods {
			gr.Pods = append(gr.Pods, p.namespace+"/"+p.name)
		}
		slices.Sort(gr.Pods)
		out = append(out, gr)
	}
	slices.SortFunc(out, func(a, b Group) int {
		if a.Direction != b.Direction {
			return int(a.Direction) - int(b.Direction)
		}
		return cmp.Or(strings.Compare(strings.Join(a.Policies, ","), strings.Join(b.Policies, ",")), cmp.Compare(a.ID, b.ID))
	})
	return out
}
