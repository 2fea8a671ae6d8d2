package desired

import (
	"fmt"

	"github.com/nodenet/nodenet/internal/problems"
)

// Problem is something wrong in an API object or a flag; the part it names
// was skipped.
type Problem = problems.Problem

// Reasons of problems (event reasons).
const (
	ReasonBadAnnotation = "InvalidBGPAnnotation"
	ReasonNoNodeIP      = "NodeWithoutAddress"
	ReasonNoPassword    = "BGPPasswordMissing"
	ReasonDuplicatePeer = "DuplicateBGPPeer"
	ReasonBadService    = "InvalidServiceIP"
	ReasonBadPodCIDR    = "InvalidPodCIDR"
)

type problemList struct{ list []Problem }

func (ps *problemList) add(kind, ns, name, reason, format string, args ...any) {
	ps.list = append(ps.list, Problem{Kind: kind, Namespace: ns, Name: name, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

func (ps *problemList) node(name, reason, format string, args ...any) {
	ps.add("Node", "", name, reason, format, args...)
}
