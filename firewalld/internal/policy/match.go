package policy

import (
	"k8s.io/apimachinery/pkg/labels"
)

// matchEntry caches the identities a selector peer matches.
type matchEntry struct {
	identVer, nsVer uint64
	idents          []*identity
}

// matching returns the identities selector peer p matches, from the cache
// while neither the identities nor the namespace labels changed.
func (cp *Compiler) matching(p *peer) []*identity {
	if e, ok := cp.matches[p]; ok && e.identVer == cp.identVer && e.nsVer == cp.nsVer {
		return e.idents
	}
	nsMatch := map[string]bool{}
	var out []*identity
	for _, id := range cp.idents {
		ok, seen := nsMatch[id.namespace]
		if !seen {
			ok = cp.namespaceMatches(p, id.namespace)
			nsMatch[id.namespace] = ok
		}
		if ok && (p.podSelector == nil || p.podSelector.Matches(labels.Set(id.labels))) {
			out = append(out, id)
		}
	}
	cp.matches[p] = matchEntry{identVer: cp.identVer, nsVer: cp.nsVer, idents: out}
	return out
}

func (cp *Compiler) namespaceMatches(p *peer, ns string) bool {
	if p.nsSelector == nil {
		return ns == p.namespace
	}
	l := cp.nsLabels[ns]
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
