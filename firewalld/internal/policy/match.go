package policy

import (
	"slices"

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
	e, ok := cp.matches[p]
	if ok && e.identVer == cp.identVer && e.nsVer == cp.nsVer {
		return e.idents
	}
	if ok && e.identVer == cp.identVerStart && e.nsVer == cp.nsVer {
		// Only identities of this compile came or went: update the list.
		gone := map[*identity]bool{}
		for _, id := range cp.goneIdents {
			gone[id] = true
		}
		out := slices.DeleteFunc(slices.Clone(e.idents), func(id *identity) bool { return gone[id] })
		for _, id := range cp.addedIdents {
			if _, live := cp.idents[id.key]; live && cp.peerMatches(p, id) {
				out = append(out, id)
			}
		}
		cp.matches[p] = matchEntry{identVer: cp.identVer, nsVer: cp.nsVer, idents: out}
		return out
	}
	nsMatch := map[string]bool{}
	var out []*identity
	for _, id := range cp.idents {
		ok, seen := nsMatch[id.namespace]
		if !seen {
			ok = cp.namespaceMatches(p, id.namespace)
			nsMatch[id.namespace] = ok
		}
		if ok && podMatches(p, id) {
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

// peerMatches reports whether selector peer p matches identity id.
func (cp *Compiler) peerMatches(p *peer, id *identity) bool {
	return cp.namespaceMatches(p, id.namespace) && podMatches(p, id)
}

func podMatches(p *peer, id *identity) bool {
	return p.podSelector == nil || p.podSelector.Matches(labels.Set(id.labels))
}
