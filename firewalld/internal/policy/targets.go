package policy

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"k8s.io/apimachinery/pkg/labels"
)

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

// targets recomputes which policies select each local pod, the target
// groups, the regions of their ipBlocks and the address maps of local pods.
// It costs in proportion to the node's pods and their namespaces' policies.
func (cp *Compiler) targets(d *model.Delta) {
	groups := map[string]*targetGroup{}
	local := map[*compiledPolicy]bool{}
	cp.stats.SelectedPods = 0
	for p := range cp.local {
		set := labels.Set(p.labels)
		var selecting []*compiledPolicy
		for _, pol := range cp.byNS[p.namespace] {
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
			g := groupOf(groups, dir, in, p)
			g.pods = append(g.pods, p)
		}
		if isolated {
			cp.stats.SelectedPods++
		}
	}
	cp.stats.LocalPolicies, cp.stats.Rules = len(local), 0
	for pol := range local {
		cp.stats.Rules += len(pol.rules[0]) + len(pol.rules[1])
	}
	cp.stats.Policies = 0
	for _, list := range cp.byNS {
		cp.stats.Policies += len(list)
	}

	// Numbers for new groups; gone ones are released.
	var keys []string
	for k := range groups {
		if _, ok := cp.groups[k]; !ok {
			keys = append(keys, k)
		}
	}
	for k := range cp.groups {
		if _, ok := groups[k]; !ok {
			cp.ids.release(k)
		}
	}
	cp.ids.assign(keys)
	cp.groups = groups

	// The local pods' address maps, diffed against what they hold.
	known := map[netip.Addr]struct{}{}
	want := [2]map[netip.Addr]model.ID{{}, {}}
	for p := range cp.local {
		for _, ip := range p.ips {
			if cp.owner[ip] == p {
				known[ip] = struct{}{}
			}
		}
	}
	for _, g := range groups {
		id := cp.ids.id(g.key)
		for _, p := range g.pods {
			for _, ip := range p.ips {
				if cp.owner[ip] == p {
					want[g.dir-1][ip] = id
				}
			}
		}
	}
	for ip := range cp.dp.KnownLocal {
		if _, ok := known[ip]; !ok {
			d.KnownLocal.Remove(cp.dp.KnownLocal, ip)
		}
	}
	for ip := range known {
		d.KnownLocal.Put(cp.dp.KnownLocal, ip)
	}
	for i, pair := range []struct {
		m  map[netip.Addr]model.ID
		md model.MapDelta[netip.Addr, model.ID]
	}{{cp.dp.IngressGroup, d.IngressGroup}, {cp.dp.EgressGroup, d.EgressGroup}} {
		for ip := range pair.m {
			if _, ok := want[i][ip]; !ok {
				pair.md.Remove(pair.m, ip)
			}
		}
		for ip, id := range want[i] {
			pair.md.Put(pair.m, ip, id, model.EqID)
		}
	}
	cp.groupList = cp.listGroups()
	cp.stats.Groups = len(groups)
}

// groupOf returns the target group of pod p isolated by policies in dir.
func groupOf(groups map[string]*targetGroup, dir model.Direction, policies []*compiledPolicy, p *podInfo) *targetGroup {
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
	g, ok := groups[key]
	if !ok {
		g = &targetGroup{key: key, dir: dir, policies: policies, ports: ports}
		groups[key] = g
	}
	return g
}

func (cp *Compiler) listGroups() []Group {
	out := make([]Group, 0, len(cp.groups))
	for _, g := range cp.groups {
		gr := Group{ID: cp.ids.id(g.key), Direction: g.dir}
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
