package harness

import (
	"os"
	"testing"
)

// The demo (make demo) is a guest test too, run by a host test of its own
// with EnvDemo in the guest's environment (Config.Env) and only its test
// selected (Config.Run). The variable keeps the two apart both ways: the
// demo's guest test skips without it, so a normal e2e run never shows the
// demo, and SkipUnlessGuest skips with it, so the demo never runs the
// tests.
const (
	// EnvDemo says the guest shows the demo; its value is DemoHold or
	// DemoOnce.
	EnvDemo = "NODENET_E2E_DEMO"
	// DemoHold: once shown, the guest keeps the cluster running until the
	// host kills the VM (Config.Context).
	DemoHold = "hold"
	// DemoOnce: the guest ends once the demo is shown, so that a script
	// can check it.
	DemoOnce = "once"
	// DemoShown is the line the guest prints once the whole demo is shown
	// and checked: the host prints how to use the cluster after it.
	DemoShown = "nodenet demo: the cluster is ready."
)

// SkipUnlessDemo skips t unless RunGuest started the binary in the VM for
// the demo; host names the host half's test, for the message.
func SkipUnlessDemo(t testing.TB, host string) {
	t.Helper()
	if os.Getenv(EnvAPIServer) == "" || os.Getenv(EnvDemo) == "" {
		t.Skipf("the guest half of %s (make demo): run by it, in the VM", host)
	}
}

// DemoHolds reports whether the demo keeps running once shown (DemoHold).
func DemoHolds() bool { return os.Getenv(EnvDemo) == DemoHold }
