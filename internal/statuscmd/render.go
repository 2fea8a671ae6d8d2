package statuscmd

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
)

// WriteJSON writes the reports as one JSON document.
func WriteJSON(w io.Writer, reports []Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Daemons []Report `json:"daemons"`
	}{reports})
}

// WriteTable writes one line per daemon. now renders ages.
func WriteTable(w io.Writer, reports []Report, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DAEMON\tHEALTH\tVERSION\tLAST SYNC\tSYNC TOOK\tCOUNTS\tPEERS\tERROR")
	for _, r := range reports {
		version, lastSync, took, counts, peers := "-", "-", "-", "-", "-"
		if st := r.status; st != nil {
			version = st.GetBuild().GetVersion()
			if t := st.GetSync().GetLastSyncTime(); t != nil {
				lastSync = now.Sub(t.AsTime()).Round(time.Second).String() + " ago"
			}
			if d := st.GetSync().GetLastSyncDuration(); d != nil {
				took = d.AsDuration().Round(time.Microsecond).String()
			}
			if len(st.GetCounts()) > 0 {
				var parts []string
				for k, n := range st.GetCounts() {
					parts = append(parts, fmt.Sprintf("%s=%d", k, n))
				}
				sort.Strings(parts)
				counts = strings.Join(parts, ",")
			}
			if len(st.GetPeers()) > 0 {
				var parts []string
				for _, p := range st.GetPeers() {
					state := "down"
					if p.GetConnected() {
						state = "up"
					}
					parts = append(parts, p.GetName()+":"+state)
				}
				peers = strings.Join(parts, ",")
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Daemon, r.Health, version, lastSync, took, counts, peers, r.Error)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeApplied(w, reports); err != nil {
		return err
	}
	return writeBGPPeers(w, reports, now)
}

// writeApplied writes, per daemon, the object versions its last successful
// sync covered, as kind@resourceVersion (events): what to compare with the
// resourceVersion a write returned, to know it is programmed.
func writeApplied(w io.Writer, reports []Report) error {
	var lines [][2]string
	for _, r := range reports {
		var parts []string
		for _, v := range r.status.GetSync().GetApplied() {
			at := ""
			if v.GetResourceVersion() != "" {
				at = "@" + v.GetResourceVersion()
			}
			parts = append(parts, fmt.Sprintf("%s%s (%d)", v.GetKind(), at, v.GetGeneration()))
		}
		if len(parts) > 0 {
			lines = append(lines, [2]string{r.Daemon, strings.Join(parts, ", ")})
		}
	}
	if len(lines) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\tapplied: %s\n", l[0], l[1])
	}
	return tw.Flush()
}

// writeBGPPeers writes routerd's BGP neighbours, when a report has any.
func writeBGPPeers(w io.Writer, reports []Report, now time.Time) error {
	var peers []*nodev1.BGPPeer
	for _, r := range reports {
		peers = append(peers, r.status.GetBgpPeers()...)
	}
	if len(peers) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BGP PEER\tADDRESS\tASN\tKIND\tSTATE\tSINCE\tRECEIVED\tACCEPTED\tADVERTISED\tFLAGS")
	for _, p := range peers {
		since := "-"
		if t := p.GetSince(); t != nil && !t.AsTime().IsZero() && t.AsTime().Unix() > 0 {
			since = now.Sub(t.AsTime()).Round(time.Second).String()
		}
		var flags []string
		for _, f := range []struct {
			on   bool
			name string
		}{{p.GetGracefulRestart(), "gr"}, {p.GetEndOfRib(), "eor"}, {p.GetRouteReflectorClient(), "rr-client"}, {p.GetMd5(), "md5"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		fl := strings.Join(flags, ",")
		if fl == "" {
			fl = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", p.GetName(), p.GetAddress(), p.GetAsn(), p.GetKind(), p.GetState(),
			since, p.GetReceived(), p.GetAccepted(), p.GetAdvertised(), fl)
	}
	return tw.Flush()
}
