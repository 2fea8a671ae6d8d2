package daemonproc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// Report is what `<daemon> status -o json` says of one daemon: whether its
// socket answered, its grpc.health.v1 verdict, and its status.
type Report struct {
	Reachable bool `json:"reachable"`
	// Health is SERVING, NOT_SERVING or UNREACHABLE.
	Health string `json:"health"`
	Error  string `json:"error"`
	Status Status `json:"status"`
}

// Serving reports whether the daemon answered and is healthy.
func (r Report) Serving() bool { return r.Reachable && r.Health == "SERVING" }

// Status is the daemon's StatusService answer as protojson renders it
// (api/nodenet/node/v1/status.proto): lowerCamelCase names, 64-bit
// numbers as strings, zero values left out.
type Status struct {
	Daemon   string `json:"daemon"`
	NodeName string `json:"nodeName"`
	Build    struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
	} `json:"build"`
	StartTime    time.Time         `json:"startTime"`
	Healthy      bool              `json:"healthy"`
	HealthReason string            `json:"healthReason"`
	Counts       map[string]Uint64 `json:"counts"`
	Sync         SyncStatus        `json:"sync"`
	Peers        []PeerStatus      `json:"peers"`
	Incarnation  string            `json:"incarnation"`
	Generation   Uint64            `json:"generation"`
	// BGPPeers are routerd's BGP neighbours.
	BGPPeers []BGPPeer `json:"bgpPeers"`
}

// SyncStatus is the daemon's reconcile loop.
type SyncStatus struct {
	LastSyncTime time.Time `json:"lastSyncTime"`
	LastError    string    `json:"lastError"`
	Syncs        Uint64    `json:"syncs"`
	Failures     Uint64    `json:"failures"`
	Pending      bool      `json:"pending"`
	// Applied is, per kind, how far the informer events had gone when the
	// last successful sync started: what it programmed.
	Applied []ObjectVersion `json:"applied"`
}

// ObjectVersion is how far the events of one kind had gone.
type ObjectVersion struct {
	Kind            string `json:"kind"`
	ResourceVersion string `json:"resourceVersion"`
	Generation      Uint64 `json:"generation"`
}

// Covers is a WaitStatus condition: the daemon's last successful sync
// covered kind at resourceVersion rv or later, the version the API server
// returned for a write (Kubernetes calls them opaque; etcd's are decimal
// revisions, and the daemons compare them so). Once it holds, the write's
// effect is programmed: check it once, do not poll.
func Covers(kind, rv string) func(Report) (bool, string) {
	want, err := strconv.ParseUint(rv, 10, 64)
	return func(r Report) (bool, string) {
		if err != nil {
			return false, fmt.Sprintf("resourceVersion %q is not a decimal number", rv)
		}
		for _, v := range r.Status.Sync.Applied {
			if v.Kind != kind {
				continue
			}
			got, perr := strconv.ParseUint(v.ResourceVersion, 10, 64)
			if perr == nil && got >= want {
				return true, ""
			}
			return false, fmt.Sprintf("last sync covered %s@%s (%d events), want @%s", kind, v.ResourceVersion, v.Generation, rv)
		}
		return false, fmt.Sprintf("last sync covered no %s (applied %v, %d syncs, error %q)", kind, r.Status.Sync.Applied, r.Status.Syncs(), r.Error)
	}
}

// PeerStatus is what the daemon knows of a peer daemon it watches.
type PeerStatus struct {
	Name      string `json:"name"`
	Connected bool   `json:"connected"`
	LastError string `json:"lastError"`
	// Incarnation and Generation are of the last facts received from the
	// peer: a new incarnation is a new process.
	Incarnation string `json:"incarnation"`
	Generation  Uint64 `json:"generation"`
}

// BGPPeer is one neighbour of routerd's BGP speaker.
type BGPPeer struct {
	Name            string    `json:"name"`
	Address         string    `json:"address"`
	ASN             uint32    `json:"asn"`
	Kind            string    `json:"kind"`
	State           string    `json:"state"`
	Since           time.Time `json:"since"`
	Received        Uint64    `json:"received"`
	Accepted        Uint64    `json:"accepted"`
	Advertised      Uint64    `json:"advertised"`
	GracefulRestart bool      `json:"gracefulRestart"`
	EndOfRIB        bool      `json:"endOfRib"`
}

// Established reports whether the session is up.
func (p BGPPeer) Established() bool { return p.State == "established" }

// Syncs is the number of syncs run so far.
func (s Status) Syncs() uint64 { return uint64(s.Sync.Syncs) }

// Count is one of the daemon's counts (0 when absent: protojson leaves
// zero values out of maps only when the daemon did).
func (s Status) Count(name string) (uint64, bool) {
	n, ok := s.Counts[name]
	return uint64(n), ok
}

// Uint64 is a protojson 64-bit number: a string, or a plain number.
type Uint64 uint64

// UnmarshalJSON implements json.Unmarshaler.
func (u *Uint64) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("uint64 %s: %w", b, err)
	}
	*u = Uint64(n)
	return nil
}

// Status runs `<daemon> status -o json` on the daemon's run directory.
// The command talks to the unix socket, so it runs from the test's own
// namespace. A daemon that does not answer is a Report with Reachable
// false, not an error; an error means the command's output made no sense.
func (d *Daemon) Status(ctx context.Context) (Report, error) {
	bin, _ := d.Binary()
	cmd := exec.CommandContext(ctx, bin, "status", "-o", "json", "--run-dir="+d.runDir, "--daemons="+d.name,
		"--timeout="+statusTimeout.String())
	cmd.Env = env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// Exit status 1 means unhealthy or unreachable; the JSON says which.
	out, _ := cmd.Output()
	var doc struct {
		Daemons []Report `json:"daemons"`
	}
	if err := json.Unmarshal(out, &doc); err != nil || len(doc.Daemons) != 1 {
		return Report{}, fmt.Errorf("%s status on %s: %q, %v (stderr %q)", d.name, d.node.Name, out, err, stderr.Bytes())
	}
	return doc.Daemons[0], nil
}

// WaitStatus polls the status until cond accepts it and returns that
// report. It fails when the process exits, or when ctx ends, with cond's
// last explanation (why) of what it saw.
func (d *Daemon) WaitStatus(ctx context.Context, what string, cond func(Report) (ok bool, why string)) (Report, error) {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last string
	for {
		if p := d.current(); p == nil || p.exited() {
			return Report{}, fmt.Errorf("%s on %s: %s: not running (%v)", d.name, d.node.Name, what, d.ExitError())
		}
		r, err := d.Status(ctx)
		if err != nil {
			last = err.Error()
		} else if ok, why := cond(r); ok {
			return r, nil
		} else {
			last = why
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return Report{}, fmt.Errorf("%s on %s: %s: %w (last: %s)", d.name, d.node.Name, what, ctx.Err(), last)
		}
	}
}

// WaitReady waits until the current run answers on its socket, is
// healthy and has completed a sync, and returns that report.
func (d *Daemon) WaitReady(ctx context.Context) (Report, error) {
	return d.WaitStatus(ctx, "ready (healthy, first sync done)", func(r Report) (bool, string) {
		if r.Serving() && r.Status.Syncs() > 0 {
			return true, ""
		}
		return false, fmt.Sprintf("health %s, %d syncs, error %q", r.Health, r.Status.Syncs(), r.Error)
	})
}
