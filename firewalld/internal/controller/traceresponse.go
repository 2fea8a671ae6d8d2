package controller

import (
	"fmt"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/firewalld/internal/policy"
)

// traceResponse turns the compiler's trace into the API's answer, with
// the reasons people read.
func traceResponse(tr policy.Trace, q policy.Query) *nodev1.FirewallTraceServiceTraceResponse {
	r := &nodev1.FirewallTraceServiceTraceResponse{
		Source: traceEnd(tr.From), Destination: traceEnd(tr.To), Port: portString(q),
		Verdict: nodev1.FirewallTraceVerdict_FIREWALL_TRACE_VERDICT_DENIED,
		Egress:  traceDirection(model.Egress, tr.Egress, tr.From),
		Ingress: traceDirection(model.Ingress, tr.Ingress, tr.To),
	}
	reason := func(code, format string, args ...any) {
		r.Reasons = append(r.Reasons, &nodev1.TraceReason{Code: code, Message: fmt.Sprintf(format, args...)})
	}
	switch tr.Verdict {
	case model.Allowed:
		r.Verdict = nodev1.FirewallTraceVerdict_FIREWALL_TRACE_VERDICT_ALLOWED
		reason("Allowed", "the source's egress and the destination's ingress let the connection open, as far as this node decides")
		reason("Established", "the replies pass as packets of an established connection, whatever the policies of the reverse direction")
	case model.DeniedPending:
		reason("PendingPod", "an address of this node's pod CIDRs that firewalld does not know as a pod yet: dropped until it does (fail closed)")
	case model.DeniedEgress:
		reason("EgressDenied", "the source is isolated for egress and no rule of its policies lets the packet out")
	case model.DeniedIngress:
		reason("IngressDenied", "the destination is isolated for ingress and no rule of its policies lets the packet in")
	}
	if tr.Verdict != model.Allowed {
		reason("Established", "only new connections are judged: a connection established before the policies changed keeps passing")
	}
	return r
}

func traceEnd(e policy.TracedEnd) *nodev1.FirewallTraceEnd {
	return &nodev1.FirewallTraceEnd{Pod: e.Pod, Ip: e.Addr.String(), Local: e.Local}
}

func traceDirection(dir model.Direction, d policy.DirectionTrace, end policy.TracedEnd) *nodev1.FirewallTraceDirection {
	out := &nodev1.FirewallTraceDirection{}
	who := "the source"
	if dir == model.Ingress {
		who = "the destination"
	}
	reason := func(code, format string, args ...any) {
		out.Reason = &nodev1.TraceReason{Code: code, Message: fmt.Sprintf(format, args...)}
	}
	switch d.Check {
	case policy.NotLocal:
		out.Check = nodev1.FirewallTraceCheck_FIREWALL_TRACE_CHECK_NOT_LOCAL
		if end.Pod != "" {
			reason("NotLocal", "%s is a pod of another node: that node's firewalld checks its %s", who, dir)
		} else {
			reason("NotLocal", "%s is not a pod of this node: nothing to check here for %s", who, dir)
		}
		return out
	case policy.NotIsolated:
		out.Check = nodev1.FirewallTraceCheck_FIREWALL_TRACE_CHECK_NOT_ISOLATED
		reason("NotIsolated", "no NetworkPolicy selects %s for %s: everything passes", who, dir)
		return out
	case policy.CheckAllowed:
		out.Check = nodev1.FirewallTraceCheck_FIREWALL_TRACE_CHECK_ALLOWED
	default:
		out.Check = nodev1.FirewallTraceCheck_FIREWALL_TRACE_CHECK_DENIED
	}
	out.Group = d.Group.String()
	rules := 0
	for _, p := range d.Policies {
		tp := &nodev1.FirewallTracePolicy{Name: p.Name}
		for _, x := range p.Rules {
			tp.Rules = append(tp.Rules, traceRule(x))
		}
		rules += len(p.Rules)
		out.Policies = append(out.Policies, tp)
	}
	switch {
	case d.Check == policy.CheckAllowed:
		reason("RuleMatched", "a rule of a policy selecting %s for %s matches", who, dir)
	case rules == 0:
		reason("NoRules", "the policies selecting %s for %s have no %s rules: they deny everything", who, dir, dir)
	default:
		reason("NoRuleMatched", "%s is isolated for %s and none of its policies' rules matches", who, dir)
	}
	return out
}

func traceRule(x policy.RuleTrace) *nodev1.FirewallTraceRule {
	r := &nodev1.FirewallTraceRule{Rule: x.Rule, Peers: x.Peers, Ports: x.Ports, Matched: x.Matched}
	switch {
	case x.Matched:
		r.Reason = &nodev1.TraceReason{Code: "Matched", Message: "the peer and the port match"}
	case x.PeerMatched && x.PortMatched:
		r.Reason = &nodev1.TraceReason{Code: "NeitherMatched", Message: "the peer and the port match different parts of the rule (named ports resolve per destination)"}
	case x.PeerMatched:
		r.Reason = &nodev1.TraceReason{Code: "PortNotMatched", Message: "the peer matches, the port does not"}
	case x.PortMatched:
		r.Reason = &nodev1.TraceReason{Code: "PeerNotMatched", Message: "the port matches, the peer does not"}
	default:
		r.Reason = &nodev1.TraceReason{Code: "NeitherMatched", Message: "neither the peer nor the port matches"}
	}
	return r
}
