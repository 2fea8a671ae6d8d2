package policy

import (
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
func Compile(in Input) Result {
	var ps problems
	c := &compiler{dp: model.NewDatapath(), ids: newIDSpace(), nsLabels: map[string]map[string]string{}}
	for _, ns := range in.Namespaces {
		c.nsLabels[ns.Name] = ns.Labels
	}
	for _, p := range in.PodCIDRs {
		c.dp.LocalCIDRs = append(c.dp.LocalCIDRs, p.Masked())
	}
	c.pods = pods(in.Pods, in.Node, &ps)
	c.idents = identities(c.pods)
	peers := peerTable{}
	byNS := map[string][]*compiledPolicy{}
	for _, np := range in.Policies {
		if p := parsePolicy(np, peers, &ps); p != nil {
			byNS[p.namespace] = append(byNS[p.namespace], p)
			c.stats.Policies++
		}
	}
	for _, list := range byNS {
		slices.SortFunc(list, func(a, b *compiledPolicy) int { return strings.Compare(a.key, b.key) })
	}
	c.selectTargets(byNS)
	c.assignIDs()
	c.allow()
	c.stats.Identities, c.stats.Regions, c.stats.Pods = len(c.idents), len(c.regions), len(c.pods)
	c.stats.Groups = len(c.groups)
	return Result{Datapath: c.dp, Groups: c.groupList(), Problems: ps.list, Stats: c.stats}
}

type compiler struct {
	dp       *model.Datapath
	ids      *idSpace
	nsLabels map[string]map[string]string
	pods     []*podInfo
	idents   map[string]*identity
	// groups by key, and each local pod's group per direction.
	groups  map[string]*targetGroup
	regions []region
	stats   Stats
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
		if !p.local {
			continue
		}
		for _, ip := range p.ips {
			c.dp.KnownLocal[ip] = struct{}{}
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

// assignIDs numbers groups, identities and regions (in one space), after
// finding the regions of the local policies' ipBlocks, and fills the
// address maps.
func (c *compiler) assignIDs() {
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
	c.regions = regions(blocks)
	keys := make([]string, 0, len(c.groups)+len(c.idents)+len(c.regions))
	for k := range c.groups {
		keys = append(keys, k)
	}
	for k := range c.idents {
		keys = append(keys, k)
	}
	for _, r := range c.regions {
		keys = append(keys, r.key)
	}
	c.ids.assign(keys)
	for _, g := range c.groups {
		m := c.dp.IngressGroup
		if g.dir == model.Egress {
			m = c.dp.EgressGroup
		}
		for _, p := range g.pods {
			for _, ip := range p.ips {
				m[ip] = c.ids.id(g.key)
			}
		}
	}
	for _, p := range c.pods {
		for _, ip := range p.ips {
			c.dp.PodIdent[ip] = c.ids.id(p.ident.key)
		}
	}
	for _, r := range c.regions {
		c.dp.Regions = append(c.dp.Regions, model.Region{From: r.from, To: r.to, Ident: c.ids.id(r.key)})
	}
}

// allow computes the allow elements of every group.
func (c *compiler) allow() {
	matcher := newPeerMatcher(c.idents, c.nsLabels)
	regionsOf := map[*peer][]model.ID{}
	for _, r := range c.regions {
		for _, p := range r.peers {
			regionsOf[p] = append(regionsOf[p], c.ids.id(r.key))
		}
	}
	for _, g := range c.groups {
		gid := c.ids.id(g.key)
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
					for _, id := range c.idents {
						add(c.ids.id(id.key), r.resolve(id.ports))
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
					for _, id := range matcher.matching(p) {
						if egressNamed {
							add(c.ids.id(id.key), r.resolve(id.ports))
						} else {
							add(c.ids.id(id.key), shared)
						}
					}
				}
			}
		}
		target, targetAny := c.dp.IngressAllow, c.dp.IngressAny
		if g.dir == model.Egress {
			target, targetAny = c.dp.EgressAllow, c.dp.EgressAny
		}
		for id, rs := range pairs {
			for _, r := range normalize(rs) {
				target[model.Allow{Group: gid, Ident: id, Ports: r}] = struct{}{}
			}
		}
		for _, r := range normalize(anyPorts) {
			targetAny[model.AnyAllow{Group: gid, Ports: r}] = struct{}{}
		}
	}
}

func (c *compiler) groupList() []Group {
	out := make([]Group, 0, len(c.groups))
	for _, g := range c.groups {
		gr := Group{ID: c.ids.id(g.key), Direction: g.dir}
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
