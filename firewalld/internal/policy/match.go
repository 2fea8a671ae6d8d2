package policy

import (
	"k8s.io/apimachinery/pkg/labels"
)

// peerMatcher finds the identities a selector peer matches, once per peer.
type peerMatcher struct {
	idents   []*identity
	nsLabels map[string]map[string]string
	cache    map[*peer][]*identity
}

func newPeerMatcher(idents map[string]*identity, nsLabels map[string]map[string]string) *peerMatcher {
	m := &peerMatcher{nsLabels: nsLabels, cache: map[*peer][]*identity{}}
	for _, id := range idents {
		m.idents = append(m.idents, id)
	}
	return m
}

func (m *peerMatcher) matching(p *peer) []*identity {
	if out, ok := m.cache[p]; ok {
		return out
	}
	nsMatch := map[string]bool{}
	var out []*identity
	for _, id := range m.idents {
		ok, seen := nsMatch[id.namespace]
		if !seen {
			ok = m.namespaceMatches(p, id.namespace)
			nsMatch[id.namespace] = ok
		}
		if ok && (p.podSelector == nil || p.podSelector.Matches(labels.Set(id.labels))) {
			out = append(out, id)
		}
	}
	m.cache[p] = out
	return out
}

func (m *peerMatcher) namespaceMatches(p *peer, ns string) bool {
	if p.nsSelector == nil {
		return ns == p.namespace
	}
	l := m.nsLabels[ns]
	// The API server labels every namespace with its name; an informer
	// that has not seen the namespace yet still knows that much.
	if _, ok := l["kubernetes.io/metadata.name"]; !ok {
		withName := make(labels.Set, len(l)+1)
		for k, v := range l {
			withName[k] = v
		}
		withName["kubernetes.io/metadata.name"] = ns
		return p.nsSelector.Matches(withName)
	}
	return p.nsSelector.Matches(labels.Set(l))
}
