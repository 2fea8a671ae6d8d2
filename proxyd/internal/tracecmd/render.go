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
func WriteText(w io.Writer, r *nodev1.ProxyTraceServiceTraceResponse) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Packet:      %s -> %s\n", source(r.GetSource()), r.GetDestination())
	at := ""
	if t := r.GetSyncTime(); t != nil {
		at = " at " + t.AsTime().UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "Based on:    sync %d of proxyd on %s%s\n", r.GetSyncGeneration(), r.GetNodeName(), at)
	if e := r.GetSyncError(); e != "" {
		fmt.Fprintf(&b, "             that sync failed: %s\n", e)
	}
	fmt.Fprintf(&b, "Verdict:     %s\n", strings.TrimPrefix(r.GetVerdict().String(), "TRACE_VERDICT_"))
	for _, x := range r.GetReasons() {
		fmt.Fprintf(&b, "             %s: %s\n", x.GetCode(), x.GetMessage())
	}
	if len(r.GetOtherPorts()) > 0 {
		fmt.Fprintf(&b, "Served here: %s\n", strings.Join(r.GetOtherPorts(), ", "))
	}
	if s := r.GetService(); s != nil {
		port := s.GetPortName()
		if port == "" {
			port = "(unnamed)"
		}
		prog := "programmed in IPVS"
		if !s.GetProgrammed() {
			prog = "NOT programmed in IPVS"
		}
		fmt.Fprintf(&b, "Service:     %s port %s, as %s (%s)\n", s.GetName(), port, kind(s.GetKind()), prog)
		fmt.Fprintf(&b, "Scheduler:   %s\n", s.GetScheduler())
		aff := s.GetSessionAffinity()
		if s.GetAffinityTimeoutSeconds() > 0 {
			aff += fmt.Sprintf(" (%ds)", s.GetAffinityTimeoutSeconds())
		}
		fmt.Fprintf(&b, "Affinity:    %s\n", aff)
		fmt.Fprintf(&b, "Policy:      %s %s\n", s.GetTrafficPolicyField(), s.GetTrafficPolicy())
		if t := s.GetTopology(); t != nil {
			fmt.Fprintf(&b, "Topology:    %s: %s\n", t.GetCode(), t.GetMessage())
		}
		if len(s.GetSourceRanges()) > 0 {
			fmt.Fprintf(&b, "Sources:     %s\n", strings.Join(s.GetSourceRanges(), ", "))
		}
	}
	if m := r.GetMasquerade(); m != nil {
		fmt.Fprintf(&b, "Masquerade:  %s: %s\n", m.GetCode(), m.GetMessage())
	}
	if len(r.GetEndpoints()) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ENDPOINT\tNODE\tPOD\tSELECTED\tWEIGHT\tMASQ\tREASON")
		for _, e := range r.GetEndpoints() {
			weight, masq := "-", "-"
			if e.GetSelected() {
				weight, masq = fmt.Sprint(e.GetWeight()), yesNo(e.GetMasquerade())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s: %s\n", e.GetAddress(), dash(e.GetNode()), dash(e.GetPod()), yesNo(e.GetSelected()),
				weight, masq, e.GetReason().GetCode(), e.GetReason().GetMessage())
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func source(s *nodev1.TraceSource) string {
	ip := s.GetIp()
	if ip == "" {
		ip = "address unknown"
	}
	where := ""
	if s.GetLocalPod() {
		where = ", in this node's pod CIDRs"
	}
	switch s.GetKind() {
	case "pod":
		return fmt.Sprintf("pod %s (%s%s)", s.GetPod(), ip, where)
	case "node":
		return fmt.Sprintf("this node (%s)", ip)
	}
	return ip + strings.TrimPrefix(where, ",")
}

func kind(k nodev1.VIPKind) string {
	switch k {
	case nodev1.VIPKind_VIP_KIND_CLUSTER_IP:
		return "ClusterIP"
	case nodev1.VIPKind_VIP_KIND_EXTERNAL_IP:
		return "ExternalIP"
	case nodev1.VIPKind_VIP_KIND_LOAD_BALANCER:
		return "LoadBalancer IP"
	case nodev1.VIPKind_VIP_KIND_NODE_PORT:
		return "NodePort on a node address"
	}
	return k.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
