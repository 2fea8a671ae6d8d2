//go:build kernel

package policy

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/daemonproc"
)

// firewalld runs as in production, one process per node inside the node's
// network namespace (hostNetwork): `firewalld run` with the node's name,
// the firewalld service account's kubeconfig and a run directory of its
// own, without peers (routerd is not running: firewalld takes the pod CIDR
// from the Node object). The kubeconfig names the apiserver as
// https://127.0.0.1:<port>, which a relay in the node forwards to the
// apiserver on the host's loopback (daemonproc.StartAPIRelay).

// firewalldStartTimeout bounds a start, up to the first sync.
const firewalldStartTimeout = 30 * time.Second

// startFirewalld starts a relay and firewalld (test/daemonproc) in every
// node and waits until each has completed its first sync. Both are stopped
// when t ends (first firewalld, which would keep the namespaces alive,
// then the relay); when t failed, their logs go to the test output.
func (f *fixture) startFirewalld(t *testing.T, bin string) {
	for _, n := range f.nodes {
		daemonproc.StartAPIRelay(t, n, f.cp.URL)
		f.fw = append(f.fw, daemonproc.New(t, daemonproc.Config{
			Daemon: "firewalld", Bin: bin, Node: n, Kubeconfig: f.cp.Kubeconfig(controlplane.Firewalld),
			Args: []string{"--peers="}, // firewalld alone: node facts from the Node object
		}))
	}
	ctx, cancel := stepContext(t, firewalldStartTimeout)
	defer cancel()
	for _, fw := range f.fw {
		if err := fw.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, fw := range f.fw {
		if _, err := fw.WaitReady(ctx); err != nil {
			t.Fatalf("%v\n----- its log -----\n%s", err, fw.Logs(daemonproc.LogDumpLimit))
		}
	}
}

// enforcementGate says why the cases that need enforcement must be
// skipped, or "" when they run. THE GATE: firewalld enforces NetworkPolicy
// once its status reports a "policies" count; until then (the daemon
// skeleton reports no counts) only the no-policy case runs, so that `make
// test-kernel` stays green while the enforcement is being written. Remove
// the gate when firewalld enforces.
func (f *fixture) enforcementGate(t *testing.T) string {
	ctx, cancel := stepContext(t, apiTimeout)
	defer cancel()
	for _, fw := range f.fw {
		st, err := fw.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st.Status.Counts["policies"]; !ok {
			return fmt.Sprintf("firewalld does not enforce NetworkPolicy yet (`firewalld status -o json` on %s reports no \"policies\" count)", fw.Node().Name)
		}
	}
	return ""
}

// requireEnforcement skips t behind the gate.
func (f *fixture) requireEnforcement(t *testing.T) {
	t.Helper()
	if f.gate != "" {
		t.Skip(f.gate)
	}
}

// syncMarks are the sync counts of the running firewalld processes, by
// node index: taken before a change, settled compares with them.
func (f *fixture) syncMarks(t *testing.T) map[int]uint64 {
	t.Helper()
	ctx, cancel := stepContext(t, apiTimeout)
	defer cancel()
	marks := map[int]uint64{}
	for i, fw := range f.fw {
		if !fw.Running() {
			continue
		}
		st, err := fw.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		marks[i] = st.Status.Syncs()
	}
	return marks
}

// describeFirewalld is one line per node of what firewalld's status says,
// for failure messages (its logs follow at the end of the test).
func (f *fixture) describeFirewalld(ctx context.Context) string {
	var b strings.Builder
	for _, fw := range f.fw {
		if !fw.Running() {
			fmt.Fprintf(&b, "firewalld on %s: not running\n", fw.Node().Name)
			continue
		}
		st, err := fw.Status(ctx)
		if err != nil {
			fmt.Fprintf(&b, "firewalld on %s: %v\n", fw.Node().Name, err)
			continue
		}
		var counts []string
		for _, k := range slices.Sorted(maps.Keys(st.Status.Counts)) {
			counts = append(counts, fmt.Sprintf("%s=%d", k, st.Status.Counts[k]))
		}
		fmt.Fprintf(&b, "firewalld on %s: %s, %d syncs (%d failed), pending %v, last error %q, counts %s\n", fw.Node().Name,
			st.Health, st.Status.Syncs(), st.Status.Sync.Failures, st.Status.Sync.Pending, st.Status.Sync.LastError, strings.Join(counts, " "))
	}
	return b.String()
}

// settled reports whether every firewalld marked has synced since the mark
// and has nothing pending: the change made after the marks is applied
// (unless its informer event was still in flight, which the further round
// of probes that follows covers). When not, why says what is missing.
func (f *fixture) settled(ctx context.Context, marks map[int]uint64) (ok bool, why string, err error) {
	for i, mark := range marks {
		fw := f.fw[i]
		if !fw.Running() {
			return false, "", fmt.Errorf("firewalld on %s is not running: %v", fw.Node().Name, fw.ExitError())
		}
		st, err := fw.Status(ctx)
		if err != nil {
			return false, "", err
		}
		switch {
		case st.Status.Sync.LastError != "":
			return false, fmt.Sprintf("firewalld on %s: its last sync failed: %s", fw.Node().Name, st.Status.Sync.LastError), nil
		case st.Status.Syncs() <= mark:
			return false, fmt.Sprintf("firewalld on %s has not synced since the change (%d syncs)", fw.Node().Name, st.Status.Syncs()), nil
		case st.Status.Sync.Pending:
			return false, fmt.Sprintf("firewalld on %s has a change pending", fw.Node().Name), nil
		}
	}
	return true, "", nil
}
