package harness

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/netns"
)

// The guest half's side: what RunGuest gave the guest test binary.

// SkipUnlessGuest skips t unless RunGuest started the binary (in the VM)
// for the tests, not for the demo (EnvDemo); host names the host half's
// test, for the message.
func SkipUnlessGuest(t testing.TB, host string) {
	t.Helper()
	if os.Getenv(EnvAPIServer) == "" {
		t.Skipf("the guest half of %s: run by it, in the VM (go test -tags e2e)", host)
	}
	if os.Getenv(EnvDemo) != "" {
		t.Skipf("the guest half of %s: not in the demo (%s is set)", host, EnvDemo)
	}
}

// Binary is the path of a daemon's binary (Config.Daemons).
func Binary(t testing.TB, daemon string) string {
	t.Helper()
	return mustEnv(t, EnvBinPrefix+strings.ToUpper(daemon))
}

// Kubeconfig is the path of a daemon identity's kubeconfig
// (Config.Identities); its server is the relay StartRelay makes in a node.
func Kubeconfig(t testing.TB, id controlplane.Identity) string {
	t.Helper()
	return mustEnv(t, EnvKubeconfigPrefix+strings.ToUpper(string(id)))
}

// Out is the directory shared read-write with the host.
func Out(t testing.TB) string {
	t.Helper()
	return mustEnv(t, EnvOut)
}

func mustEnv(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: the host half sets it", name)
	}
	return v
}

// AdminClient is a clientset acting as the admin (system:masters),
// through the VM's forward.
func AdminClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", mustEnv(t, EnvAdminKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 200, 400
	cfg.UserAgent = "nodenet-e2e/admin"
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// StartRelay makes the apiserver, which only the VM's own namespace
// reaches (at EnvAPIServer), reachable as 127.0.0.1:<port> in ns, where
// the daemons' kubeconfigs point, until t ends. Call it before starting
// the daemons of ns, so that it closes after them (cleanups run last
// first).
func StartRelay(t testing.TB, ns *netns.NetNS) *netns.Relay {
	t.Helper()
	target := mustEnv(t, EnvAPIServer)
	_, port, err := net.SplitHostPort(target)
	if err != nil {
		t.Fatalf("%s=%q: %v", EnvAPIServer, target, err)
	}
	r, err := ns.StartRelay(net.JoinHostPort("127.0.0.1", port), target, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// Eventually polls cond every interval until it holds, and fails t with
// what and cond's last explanation when timeout passes first (or t's
// context ends).
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	if err := Poll(t.Context(), timeout, interval, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Poll is Eventually returning an error instead of failing a test.
func Poll(ctx context.Context, timeout, interval time.Duration, cond func() (ok bool, state string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return &pollError{timeout: timeout, state: state, err: ctx.Err()}
		}
	}
}

type pollError struct {
	timeout time.Duration
	state   string
	err     error
}

func (e *pollError) Error() string {
	return "not after " + e.timeout.String() + " (" + e.err.Error() + "): " + e.state
}

func (e *pollError) Unwrap() error { return e.err }
