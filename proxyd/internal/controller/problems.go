package controller

import (
	"github.com/nodenet/nodenet/internal/problems"
	"github.com/nodenet/nodenet/proxyd/internal/desired"
	"k8s.io/apimachinery/pkg/runtime"
)

// EventRecorder is the part of client-go's record.EventRecorder proxyd uses.
type EventRecorder = problems.EventRecorder

// reportProblems hands the problems of the Services and EndpointSlices to
// the reporter, which tells about each once, when it appears.
func (c *Controller) reportProblems(ps []desired.Problem) {
	out := make([]problems.Problem, len(ps))
	for i, p := range ps {
		out[i] = problems.Problem{Kind: p.Kind, Namespace: p.Object.Namespace, Name: p.Object.Name, Reason: p.Reason, Message: p.Message}
	}
	c.problems.Report(out, func(p problems.Problem) runtime.Object { return c.lookup(p) })
}
