package policy

import "fmt"

// Problem is something wrong in an API object that firewalld skipped: the
// controller logs it, counts it and reports it as an event on the object.
type Problem struct {
	// Kind, Namespace and Name say which object.
	Kind, Namespace, Name string
	// Reason is a CamelCase word for the event.
	Reason string
	// Message says what was skipped and why.
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s %s/%s: %s: %s", p.Kind, p.Namespace, p.Name, p.Reason, p.Message)
}

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
type problems struct{ list []Problem }

func (ps *problems) add(kind, ns, name, reason, format string, args ...any) {
	ps.list = append(ps.list, Problem{Kind: kind, Namespace: ns, Name: name, Reason: reason, Message: fmt.Sprintf(format, args...)})
}
