//go:build e2e && !e2eguest

package cluster

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/nodenet/nodenet/test/binaries"
	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/vm"
)

// Environment of make demo (hack/demo.sh).
const (
	// envDemo=1 runs TestDemo; without it the e2e run skips it.
	envDemo = "NODENET_DEMO"
	// envDemoHold=0 ends the demo once shown (for scripts); by default it
	// runs until Ctrl-C.
	envDemoHold = "NODENET_DEMO_HOLD"
)

// TestDemo is make demo: the cluster of TestClusterInVM, with the seed
// blog's lab shown on it by the guest (TestDemoGuest), then left running
// for the user, with a kubeconfig for kubectl on the host, until SIGINT or
// SIGTERM. The signal cancels the run (the VM is killed) and the test
// returns normally, so that every cleanup runs: the control plane stops,
// the temporary directories and the kubeconfig go.
func TestDemo(t *testing.T) {
	if os.Getenv(envDemo) != "1" {
		t.Skipf("make demo (%s=1) runs it", envDemo)
	}
	hold := os.Getenv(envDemoHold) != "0"
	ctx, stop := signal.NotifyContext(t.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := binaries.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(root, "_output", "demo", "kubeconfig")
	if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o755); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(root, kubeconfig)
	if err != nil {
		rel = kubeconfig
	}

	// The guest's output goes to stdout as it is, not indented as test
	// output: the demo is for reading. Right after the guest's last step
	// comes how to use the cluster.
	shown := &lineWatch{w: os.Stdout, line: []byte(harness.DemoShown), seen: func(w io.Writer) {
		writeUsage(w, rel, hold)
	}}
	cfg := harness.Config{
		GuestPackage:    "./test/e2e/cluster",
		Daemons:         binaries.Daemons(),
		Identities:      controlplane.Daemons(),
		Modules:         append(vm.DefaultModules(), "br_netfilter"), // as TestClusterInVM
		Run:             "^TestDemoGuest$",
		Env:             []string{harness.EnvDemo + "=" + harness.DemoOnce},
		Stdout:          shown,
		AdminKubeconfig: kubeconfig,
		Context:         ctx,
	}
	if hold {
		// Unbounded: it runs until the signal cancels ctx.
		cfg.Env = []string{harness.EnvDemo + "=" + harness.DemoHold}
		cfg.Timeout = harness.NoTimeout
	}
	harness.RunGuest(t, cfg)
	switch {
	case shown.wasSeen():
	case ctx.Err() != nil:
		t.Log("stopped before the demo was shown")
	default:
		t.Fatal("the guest ended without showing the demo")
	}
	if ctx.Err() != nil {
		fmt.Println("\nnodenet demo: stopping: the VM is gone; the control plane, temporary directories and kubeconfig go next.")
	}
}

// writeUsage tells how to use the running cluster from the host.
func writeUsage(w io.Writer, kubeconfig string, hold bool) {
	fmt.Fprintf(w, `
The control plane runs on this machine, and the nodes and pods in the VM. As the admin:

    kubectl --kubeconfig %[1]s get nodes,pods,svc,networkpolicies -A -o wide
    kubectl --kubeconfig %[1]s describe networkpolicy -n demo allow-clients
    kubectl --kubeconfig %[1]s get endpointslices -n demo

`, kubeconfig)
	if _, err := exec.LookPath("kubectl"); err != nil {
		fmt.Fprintln(w, "(kubectl is not installed on this machine: install it to run the commands above.)")
	}
	if hold {
		fmt.Fprintln(w, "Ctrl-C stops the demo and cleans everything up (the VM, the control plane, temporary files and the kubeconfig).")
	} else {
		fmt.Fprintf(w, "%s=0: the demo stops now and cleans everything up.\n", envDemoHold)
	}
}

// lineWatch passes the guest's output on to w and calls seen once, right
// after the first line equal to line: in the output's order, before the
// VM run ends.
type lineWatch struct {
	w    io.Writer
	line []byte
	seen func(io.Writer)

	mu      sync.Mutex
	partial []byte // the current line, up to the last write
	found   bool
}

func (l *lineWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if l.found {
		return n, err
	}
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(l.partial[:i], "\r")
		l.partial = l.partial[i+1:]
		if bytes.Equal(line, l.line) {
			l.found, l.partial = true, nil
			l.seen(l.w)
			break
		}
	}
	return n, err
}

func (l *lineWatch) wasSeen() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.found
}
