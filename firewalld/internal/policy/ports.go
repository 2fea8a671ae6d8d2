package policy

import (
	"slices"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// resolve returns the ranges of a rule's ports, named ports looked up in
// ports (the target pod's for ingress, the peer pod's for egress; nil when
// the peer is not a pod, so named ports match nothing).
func (r *compiledRule) resolve(ports map[string]uint16) []model.PortRange {
	if r.allPorts {
		return []model.PortRange{model.AllTraffic}
	}
	out := make([]model.PortRange, 0, len(r.ports))
	for _, s := range r.ports {
		if s.name == "" {
			out = append(out, model.PortRange{ProtoFrom: s.proto, ProtoTo: s.proto, PortFrom: s.from, PortTo: s.to})
			continue
		}
		if n, ok := ports[s.name+"/"+string(s.protocolName)]; ok {
			out = append(out, model.PortRange{ProtoFrom: s.proto, ProtoTo: s.proto, PortFrom: n, PortTo: n})
		}
	}
	return out
}

// hasNamed reports whether the rule names a port.
func (r *compiledRule) hasNamed() bool {
	for _, s := range r.ports {
		if s.name != "" {
			return true
		}
	}
	return false
}

// normalize turns ranges into the fewest disjoint ones covering the same
// traffic: the kernel's interval sets reject elements that overlap. Ranges
// are either all traffic or of a single protocol.
func normalize(rs []model.PortRange) []model.PortRange {
	if len(rs) == 0 {
		return nil
	}
	for _, r := range rs {
		if r.ProtoFrom != r.ProtoTo {
			return []model.PortRange{model.AllTraffic}
		}
	}
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, model.PortRange.Compare)
	out := sorted[:1]
	for _, r := range sorted[1:] {
		last := &out[len(out)-1]
		if r.ProtoFrom == last.ProtoFrom && uint32(r.PortFrom) <= uint32(last.PortTo)+1 {
			last.PortTo = max(last.PortTo, r.PortTo)
			continue
		}
		out = append(out, r)
	}
	return out
}
