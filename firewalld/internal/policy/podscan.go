package policy

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// scanPods takes the pods of the input: new objects are parsed, gone ones
// dropped, and only their addresses and identities are updated. It reports
// whether a pod of this node came or went (the target groups must be
// recomputed).
func (cp *Compiler) scanPods(in []*corev1.Pod) (localChanged bool) {
	var added, removed []*podInfo
	for _, p := range in {
		e, ok := cp.pods[p]
		if !ok {
			e = &podEntry{info: parsePod(p)}
			cp.pods[p] = e
			if e.info != nil {
				added = append(added, e.info)
			}
		}
		e.stamp = cp.gen
	}
	if len(cp.pods) != len(in) {
		for p, e := range cp.pods {
			if e.stamp != cp.gen {
				if e.info != nil {
					removed = append(removed, e.info)
				}
				delete(cp.pods, p)
			}
		}
	}
	dirty := map[netip.Addr]struct{}{}
	// Additions first: a pod replaced by a new object with the same
	// identity never takes its identity's count to zero.
	for _, p := range added {
		if len(p.problems) > 0 {
			cp.troubled[p] = struct{}{}
		}
		if len(p.ips) == 0 {
			continue
		}
		cp.visible++
		for _, ip := range p.ips {
			cp.claims[ip] = append(cp.claims[ip], p)
			dirty[ip] = struct{}{}
		}
		id, ok := cp.idents[p.identKey]
		if !ok {
			id = &identity{key: p.identKey, namespace: p.namespace, labels: p.labels, ports: p.ports, ips: map[netip.Addr]struct{}{}}
			cp.idents[p.identKey] = id
			cp.addedIdents = append(cp.addedIdents, id)
			cp.identVer++
		}
		id.count++
		p.ident = id
		if p.node == cp.node {
			cp.local[p] = struct{}{}
			localChanged = true
		}
	}
	for _, p := range removed {
		delete(cp.troubled, p)
		if len(p.ips) == 0 {
			continue
		}
		cp.visible--
		for _, ip := range p.ips {
			cp.claims[ip] = slices.DeleteFunc(cp.claims[ip], func(q *podInfo) bool { return q == p })
			if len(cp.claims[ip]) == 0 {
				delete(cp.claims, ip)
			}
			dirty[ip] = struct{}{}
		}
		id := p.ident
		if id.count--; id.count == 0 {
			cp.goneIdents = append(cp.goneIdents, id)
			delete(cp.idents, p.identKey)
			cp.identVer++
		}
		if p.node == cp.node {
			delete(cp.local, p)
			localChanged = true
		}
	}
	for ip := range dirty {
		var best *podInfo
		for _, p := range cp.claims[ip] {
			if best == nil || p.wins(best) {
				best = p
			}
		}
		old := cp.owner[ip]
		if old == best {
			continue
		}
		if old != nil {
			delete(old.ident.ips, ip)
		}
		if best == nil {
			delete(cp.owner, ip)
		} else {
			cp.owner[ip] = best
			best.ident.ips[ip] = struct{}{}
		}
		cp.ownerChanges = append(cp.ownerChanges, ownerChange{ip: ip, old: old, new: best})
		if (old != nil && old.node == cp.node) || (best != nil && best.node == cp.node) {
			localChanged = true
		}
	}
	return localChanged
}

// scanPolicies takes the policies of the input, parsing new objects; it
// reports whether any came or went.
func (cp *Compiler) scanPolicies(in []*networkingv1.NetworkPolicy) bool {
	changed := false
	for _, np := range in {
		e, ok := cp.policies[np]
		if !ok {
			e = &policyEntry{p: parsePolicy(np, cp.peers)}
			cp.policies[np] = e
			changed = true
		}
		e.stamp = cp.gen
	}
	if len(cp.policies) != len(in) {
		for np, e := range cp.policies {
			if e.stamp != cp.gen {
				delete(cp.policies, np)
				changed = true
			}
		}
	}
	if !changed {
		return false
	}
	cp.byNS = map[string][]*compiledPolicy{}
	peers := peerTable{}
	for _, e := range cp.policies {
		p := e.p
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
		cp.byNS[p.namespace] = append(cp.byNS[p.namespace], p)
	}
	for _, list := range cp.byNS {
		slices.SortFunc(list, func(a, b *compiledPolicy) int { return strings.Compare(a.key, b.key) })
	}
	cp.peers = peers
	for pe := range cp.matches {
		if peers[pe.key] != pe {
			delete(cp.matches, pe)
		}
	}
	return true
}
