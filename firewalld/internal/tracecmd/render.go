package tracecmd

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
)

// WriteText writes resp for people.
func WriteText(w io.Writer, r *nodev1.FirewallTraceServiceTraceResponse) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Packet:      %s -> %s port %s\n", end(r.GetSource()), end(r.GetDestination()), r.GetPort())
	at := ""
	if t := r.GetSyncTime(); t != nil {
		at = " at " + t.AsTime().UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "Based on:    sync %d of firewalld on %s%s\n", r.GetSyncGeneration(), r.GetNodeName(), at)
	if e := r.GetSyncError(); e != "" {
		fmt.Fprintf(&b, "             that sync was not applied (the kernel holds an older table): %s\n", e)
	}
	fmt.Fprintf(&b, "Verdict:     %s\n", strings.TrimPrefix(r.GetVerdict().String(), "FIREWALL_TRACE_VERDICT_"))
	for _, x := range r.GetReasons() {
		fmt.Fprintf(&b, "             %s: %s\n", x.GetCode(), x.GetMessage())
	}
	for _, d := range []struct {
		name string
		d    *nodev1.FirewallTraceDirection
	}{{"Egress", r.GetEgress()}, {"Ingress", r.GetIngress()}} {
		if err := direction(&b, d.name, d.d); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func direction(b *strings.Builder, name string, d *nodev1.FirewallTraceDirection) error {
	group := ""
	if d.GetGroup() != "" {
		group = " (group " + d.GetGroup() + ")"
	}
	fmt.Fprintf(b, "\n%s:%s %s%s\n", name, strings.Repeat(" ", 12-len(name)-1),
		strings.TrimPrefix(d.GetCheck().String(), "FIREWALL_TRACE_CHECK_"), group)
	fmt.Fprintf(b, "             %s: %s\n", d.GetReason().GetCode(), d.GetReason().GetMessage())
	if len(d.GetPolicies()) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  POLICY\tRULE\tPEERS\tPORTS\tRESULT")
	for _, p := range d.GetPolicies() {
		if len(p.GetRules()) == 0 {
			fmt.Fprintf(tw, "  %s\t-\t-\t-\tno rules: isolates only\n", p.GetName())
		}
		for _, x := range p.GetRules() {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", p.GetName(), x.GetRule(), x.GetPeers(), x.GetPorts(), x.GetReason().GetCode())
		}
	}
	return tw.Flush()
}

func end(e *nodev1.FirewallTraceEnd) string {
	if e.GetPod() == "" {
		return e.GetIp()
	}
	where := "another node"
	if e.GetLocal() {
		where = "this node"
	}
	return fmt.Sprintf("pod %s (%s, %s)", e.GetPod(), e.GetIp(), where)
}
