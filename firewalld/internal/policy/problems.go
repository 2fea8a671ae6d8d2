package policy

import (
	"fmt"

	"github.com/nodenet/nodenet/internal/problems"
)

// Problem is something wrong in an API object that the compiler skipped:
// the controller logs it, counts it and reports it as an event.
type Problem = problems.Problem

// Event reasons.
const (
	ReasonInvalidSelector = "InvalidSelector"
	ReasonInvalidPeer     = "InvalidPeer"
	ReasonInvalidPort     = "InvalidPort"
	ReasonInvalidType     = "InvalidPolicyType"
	ReasonInvalidPodIP    = "InvalidPodIP"
	ReasonInvalidCIDR     = "InvalidPodCIDR"
)

// problems collects Problems.
type problemList struct{ list []Problem }

func (ps *problemList) add(kind, ns, name, reason, format string, args ...any) {
	ps.list = append(ps.list, Problem{Kind: kind, Namespace: ns, Name: name, Reason: reason, Message: fmt.Sprintf(format, args...)})
}
