package routercmd

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
)

// WriteRoutes writes the routing table for people.
func WriteRoutes(w io.Writer, r *nodev1.RouterServiceRoutesResponse) error {
	var b strings.Builder
	writeSync(&b, r.GetSync())
	fmt.Fprintf(&b, "\nLearned (%d):\n", len(r.GetLearned()))
	if len(r.GetLearned()) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PREFIX\tNEXT HOP\tPEER\tVIA\tLINK\tKERNEL\tREASON")
		for _, l := range r.GetLearned() {
			kernel := "-"
			switch {
			case l.GetInstalled():
				kernel = "installed"
			case l.GetVia() != "":
				kernel = "MISSING"
			}
			reason := l.GetReason().GetCode()
			if reason != "Routed" && l.GetReason().GetMessage() != "" {
				reason += ": " + l.GetReason().GetMessage()
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.GetPrefix(), dash(l.GetNextHop()), dash(l.GetPeer()), dash(l.GetVia()),
				dash(l.GetLink()), kernel, reason)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(&b, "\nAdvertised (%d):\n", len(r.GetAdvertised()))
	if len(r.GetAdvertised()) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PREFIX\tNEXT HOP\tWHAT")
		for _, a := range r.GetAdvertised() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.GetPrefix(), dash(a.GetNextHop()), dash(a.GetWhat()))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WritePeers writes the neighbours for people; uptimes are reckoned from
// the answer's time, so that the same answer always prints the same.
func WritePeers(w io.Writer, r *nodev1.RouterServicePeersResponse) error {
	var b strings.Builder
	writeSync(&b, r.GetSync())
	fmt.Fprintf(&b, "\nPeers (%d):\n", len(r.GetPeers()))
	if len(r.GetPeers()) > 0 {
		var at time.Time
		if t := r.GetTime(); t != nil {
			at = t.AsTime()
		}
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PEER\tADDRESS\tASN\tKIND\tSTATE\tFOR\tRECEIVED\tACCEPTED\tBEST\tROUTED\tINSTALLED\tSKIPPED\tADVERTISED\tMD5\tGR\tEOR")
		for _, p := range r.GetPeers() {
			s := p.GetSession()
			kind := s.GetKind()
			if s.GetRouteReflectorClient() {
				kind += " (rr-client)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\n", s.GetName(), s.GetAddress(), s.GetAsn(), kind,
				s.GetState(), uptime(s, at), s.GetReceived(), s.GetAccepted(), p.GetBestPaths(), p.GetRouted(), p.GetInstalled(),
				p.GetSkipped(), s.GetAdvertised(), yesNo(s.GetMd5()), yesNo(s.GetGracefulRestart()), yesNo(s.GetEndOfRib()))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeSync(b *strings.Builder, s *nodev1.RouterSync) {
	at := ""
	if t := s.GetTime(); t != nil {
		at = " at " + t.AsTime().UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(b, "Based on:  sync %d of routerd on %s%s\n", s.GetGeneration(), s.GetNodeName(), at)
	if e := s.GetError(); e != "" {
		fmt.Fprintf(b, "           that sync failed: %s\n", e)
	}
	if !s.GetInitialSyncDone() {
		b.WriteString("           initial BGP sync not done: routes found at start are kept until the peers have sent theirs\n")
	}
}

// uptime is how long the session had been in its state at the answer.
func uptime(s *nodev1.BGPPeer, at time.Time) string {
	t := s.GetSince()
	if t == nil || at.IsZero() || t.AsTime().Unix() <= 0 || t.AsTime().After(at) {
		return "-"
	}
	return at.Sub(t.AsTime()).Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
