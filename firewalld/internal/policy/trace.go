package policy

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// End is one end of a traced packet: a pod ("namespace/name") or an
// address.
type End struct {
	Pod  string
	Addr netip.Addr
}

// Query is the first packet of a connection to trace.
type Query struct {
	From, To End
	Proto    uint8
	Port     uint16
}

// TracedEnd is an end as the compiler knows it.
type TracedEnd struct {
	// Pod is "namespace/name" when the address is a pod's.
	Pod  string
	Addr netip.Addr
	// Local: the pod runs on this node.
	Local bool
}

// Check is the outcome of one direction.
type Check uint8

// The outcomes of a direction.
const (
	// NotLocal: the end is not a pod of this node; its own node judges it.
	NotLocal Check = iota + 1
	// NotIsolated: no policy of the direction selects the pod.
	NotIsolated
	// CheckAllowed: a rule of a selecting policy matches.
	CheckAllowed
	// CheckDenied: the pod is isolated and no rule matches.
	CheckDenied
)

// RuleTrace is one rule of a selecting policy against the packet.
type RuleTrace struct {
	// Rule is "ingress[i]" or "egress[i]", as in the policy.
	Rule         string
	Peers, Ports string
	// PeerMatched and PortMatched: some peer set of the rule holds the
	// other end; some port range holds the packet's. Matched: one set does
	// both (egress named ports resolve per destination).
	PeerMatched, PortMatched, Matched bool
}

// PolicyTrace is a policy selecting the pod in a direction.
type PolicyTrace struct {
	Name  string
	Rules []RuleTrace
}

// DirectionTrace is the source's egress or the destination's ingress.
type DirectionTrace struct {
	Check Check
	// Group is the target group (the chain), when isolated.
	Group    model.ID
	Policies []PolicyTrace
}

// Trace is what the compiled datapath does with a query's packet.
type Trace struct {
	From, To TracedEnd
	// Verdict is the datapath's (model.Datapath.Judge): the table's rules.
	Verdict         model.Verdict
	Egress, Ingress DirectionTrace
}

// Trace explains what the last Compile's datapath does with q's packet:
// the verdict is the datapath's own, and the rules that decide it are
// found with the code that builds the chains (ruleSets) and the sets'
// addresses. It reads the compiler's state, so like Compile it must not
// run concurrently with another call. An unknown pod is an error.
func (cp *Compiler) Trace(q Query) (Trace, error) {
	if cp.dp == nil {
		return Trace{}, fmt.Errorf("nothing compiled yet")
	}
	froms, err := cp.endAddrs(q.From)
	if err != nil {
		return Trace{}, err
	}
	tos, err := cp.endAddrs(q.To)
	if err != nil {
		return Trace{}, err
	}
	src, dst, ok := sameFamily(froms, tos)
	if !ok {
		return Trace{}, fmt.Errorf("the source (%v) and the destination (%v) have no address family in common", froms, tos)
	}
	t := Trace{From: cp.tracedEnd(src), To: cp.tracedEnd(dst), Verdict: cp.dp.Judge(src, dst, q.Proto, q.Port)}
	t.Egress = cp.direction(model.Egress, t.From, dst, q)
	t.Ingress = cp.direction(model.Ingress, t.To, src, q)
	return t, nil
}

// endAddrs returns the addresses of an end: a pod's, or the one given.
func (cp *Compiler) endAddrs(e End) ([]netip.Addr, error) {
	if e.Pod == "" {
		if !e.Addr.IsValid() {
			return nil, fmt.Errorf("an end is neither a pod nor an address")
		}
		return []netip.Addr{e.Addr.Unmap()}, nil
	}
	for _, pe := range cp.pods {
		if info := pe.info; info != nil && info.namespace+"/"+info.name == e.Pod {
			var out []netip.Addr
			for _, ip := range info.ips {
				if cp.owner[ip] == info {
					out = append(out, ip)
				}
			}
			if len(out) > 0 {
				return out, nil
			}
		}
	}
	return nil, fmt.Errorf("unknown pod %s: firewalld knows the pods that have an address and are not on the host's network", e.Pod)
}

// sameFamily picks the first pair of addresses of one family.
func sameFamily(as, bs []netip.Addr) (netip.Addr, netip.Addr, bool) {
	for _, a := range as {
		for _, b := range bs {
			if a.Is4() == b.Is4() {
				return a, b, true
			}
		}
	}
	return netip.Addr{}, netip.Addr{}, false
}

func (cp *Compiler) tracedEnd(a netip.Addr) TracedEnd {
	e := TracedEnd{Addr: a}
	if p := cp.owner[a]; p != nil {
		e.Pod = p.namespace + "/" + p.name
		_, e.Local = cp.local[p]
	}
	return e
}

// direction traces one end's check of dir; other is the far end's address.
func (cp *Compiler) direction(dir model.Direction, end TracedEnd, other netip.Addr, q Query) DirectionTrace {
	groups := cp.dp.IngressGroup
	if dir == model.Egress {
		groups = cp.dp.EgressGroup
	}
	id, isolated := groups[end.Addr]
	if !isolated {
		if end.Local {
			return DirectionTrace{Check: NotIsolated}
		}
		return DirectionTrace{Check: NotLocal}
	}
	key := model.GroupKey{Direction: dir, ID: id}
	out := DirectionTrace{Check: CheckDenied, Group: id}
	if cp.dp.Passes(key, other, q.Proto, q.Port) {
		out.Check = CheckAllowed
	}
	g := cp.groupByID(key)
	if g == nil {
		return out // cannot happen: every mapped group has its chain
	}
	for _, pol := range g.policies {
		pt := PolicyTrace{Name: pol.key}
		for i := range pol.dirRules(dir) {
			pt.Rules = append(pt.Rules, cp.traceRule(g, pol, i, other, q))
		}
		out.Policies = append(out.Policies, pt)
	}
	return out
}

func (cp *Compiler) groupByID(k model.GroupKey) *targetGroup {
	for key, g := range cp.groups {
		if g.dir == k.Direction && cp.ids.id(key) == k.ID {
			return g
		}
	}
	return nil
}

// traceRule matches the peer sets and ports rule i of pol contributes to
// g's chain against the packet.
func (cp *Compiler) traceRule(g *targetGroup, pol *compiledPolicy, i int, other netip.Addr, q Query) RuleTrace {
	r := &pol.dirRules(g.dir)[i]
	rt := RuleTrace{Rule: fmt.Sprintf("%s[%d]", g.dir, i), Peers: describePeers(r), Ports: describePorts(r)}
	cp.ruleSets(g, r, func(v *variantSpec, rs []model.PortRange) {
		peerOK := cp.inSet(v, other)
		portOK := slices.ContainsFunc(rs, func(pr model.PortRange) bool { return pr.Contains(q.Proto, q.Port) })
		rt.PeerMatched = rt.PeerMatched || peerOK
		rt.PortMatched = rt.PortMatched || portOK
		rt.Matched = rt.Matched || (peerOK && portOK)
	})
	return rt
}

// inSet reports whether peer set v (nil: any address) holds a: from the
// datapath's elements when the set is in it, else (a rule whose ports
// resolve to nothing names no set) by the test the sets are filled with.
func (cp *Compiler) inSet(v *variantSpec, a netip.Addr) bool {
	if v == nil {
		return true
	}
	if id, ok := cp.peerIDs.byKey[v.key]; ok {
		return cp.dp.InPeer(id, a)
	}
	if v.p != nil && !v.p.selectorPeer {
		return slices.ContainsFunc(v.p.ranges(), func(r addrRange) bool {
			return r.from.BitLen() == a.BitLen() && r.from.Compare(a) <= 0 && a.Compare(r.to) <= 0
		})
	}
	p := cp.owner[a]
	return p != nil && p.ident != nil && v.holds(cp, p.ident)
}
