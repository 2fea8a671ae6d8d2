package policy

import (
	"fmt"
	"strings"
)

// describePeers says what a rule's peers are, for people reading a trace.
func describePeers(r *compiledRule) string {
	if r.allPeers {
		return "any address"
	}
	if len(r.peers) == 0 {
		return "no valid peer (matches nothing)"
	}
	out := make([]string, 0, len(r.peers))
	for _, p := range r.peers {
		out = append(out, describePeer(p))
	}
	return strings.Join(out, "; ")
}

func describePeer(p *peer) string {
	if !p.selectorPeer {
		s := "ipBlock " + p.cidr.String()
		if len(p.except) > 0 {
			ex := make([]string, 0, len(p.except))
			for _, e := range p.except {
				ex = append(ex, e.String())
			}
			s += " except " + strings.Join(ex, ", ")
		}
		return s
	}
	pods := "all pods"
	if p.podSelector != nil {
		pods = "pods " + p.podSelector.String()
	}
	if p.nsSelector == nil {
		return pods + " in namespace " + p.namespace
	}
	if p.nsSelector.Empty() {
		return pods + " in every namespace"
	}
	return pods + " in namespaces " + p.nsSelector.String()
}

// describePorts says what a rule's ports are: "TCP/80", "UDP/53-54",
// "TCP/http", "SCTP (every port)".
func describePorts(r *compiledRule) string {
	if r.allPorts {
		return "all ports"
	}
	if len(r.ports) == 0 {
		return "no valid port (matches nothing)"
	}
	out := make([]string, 0, len(r.ports))
	for _, s := range r.ports {
		switch {
		case s.name != "":
			out = append(out, fmt.Sprintf("%s/%s", s.protocolName, s.name))
		case s.from == 0 && s.to == 65535:
			out = append(out, fmt.Sprintf("%s (every port)", s.protocolName))
		case s.from == s.to:
			out = append(out, fmt.Sprintf("%s/%d", s.protocolName, s.from))
		default:
			out = append(out, fmt.Sprintf("%s/%d-%d", s.protocolName, s.from, s.to))
		}
	}
	return strings.Join(out, ", ")
}
