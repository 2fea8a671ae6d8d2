package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/nodenet/nodenet/test/binaries"
	"github.com/nodenet/nodenet/test/controlplane"
	"github.com/nodenet/nodenet/test/vm"
)

// DefaultTimeout bounds a VM run, boot included, when Config.Timeout is 0.
// A passing run takes a fraction of it (TCG runs Go about 13 times slower
// than the host).
const DefaultTimeout = 8 * time.Minute

// Config describes the guest half RunGuest boots.
type Config struct {
	// GuestPackage is the package of the guest half, relative to the
	// repository root ("./test/e2e/proxyd"): compiled with -tags e2eguest.
	GuestPackage string
	// Daemons are the binaries the guest runs (binaries.Build, or
	// NODENET_BIN_DIR's): EnvBinPrefix+NAME each.
	Daemons []string
	// Identities are the daemon identities whose kubeconfigs the guest
	// gets (EnvKubeconfigPrefix+NAME), naming the relay at
	// https://127.0.0.1:<port>.
	Identities []controlplane.Identity
	// MemoryMiB is the VM's memory; 0 means vm.DefaultMemoryMiB.
	MemoryMiB int
	// CPUs is the VM's number of vCPUs; 0 means $NODENET_VM_CPUS, else 2
	// (the daemons and the guest test are busy Go processes, and QEMU runs
	// one TCG thread per vCPU).
	CPUs int
	// Modules are loaded in the VM before the guest starts; nil means
	// vm.DefaultModules().
	Modules []string
	// Timeout bounds the VM run, boot included; 0 means DefaultTimeout,
	// NoTimeout none (the demo runs until it is stopped).
	Timeout time.Duration
	// Context, when set, ends the run when it is done: the VM is killed
	// and RunGuest returns without failing t, since ending it was the
	// caller's choice (the demo's Ctrl-C). nil means t's context, whose
	// end is a failure.
	Context context.Context
	// Run selects the guest's tests (its -test.run); "" runs them all.
	Run string
	// Env is more of the guest's environment (NAME=value), e.g. EnvDemo.
	Env []string
	// Stdout receives the guest's standard output; nil means t.Output().
	Stdout io.Writer
	// AdminKubeconfig, when set, is where the admin's kubeconfig for the
	// host (kubectl beside the run; its server is the control plane on the
	// host's loopback) is written before the VM boots; it is removed when
	// t ends.
	AdminKubeconfig string
}

// NoTimeout as Config.Timeout leaves the VM run unbounded.
const NoTimeout time.Duration = -1

// RunGuest runs the guest half of t's package in a VM against a control
// plane on the host (see the package comment), and fails t when the guest
// fails. On failure the end of every log the guest left in Out goes to t's
// output; in any case the guest's summary, if it wrote one, is printed
// last, with the host's timings.
func RunGuest(t *testing.T, cfg Config) {
	t.Helper()
	begin := time.Now()
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	assets, skip, err := vm.AssetsForTests(t.Context(), t.Output())
	if err != nil {
		t.Fatalf("CI=true: the VM must run: %v", err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	root, err := binaries.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}

	// The builds run while the control plane starts; if the test ends
	// first (a skip: no control plane binaries), they are stopped (the
	// guest's) or finished (the daemons') before the temporary
	// directories go.
	binDir := t.TempDir()
	var (
		wg                     sync.WaitGroup
		bins                   map[string]string
		guestBin, cni          string
		binErr, guestErr, cErr error
	)
	base := t.Context()
	if cfg.Context != nil {
		base = cfg.Context
	}
	buildCtx, stopBuilds := context.WithCancel(base)
	defer func() {
		stopBuilds()
		wg.Wait()
	}()
	buildStart := time.Now()
	if len(cfg.Daemons) > 0 {
		wg.Go(func() { bins, binErr = binaries.Build(binDir, cfg.Daemons...) })
	}
	wg.Go(func() { guestBin, guestErr = buildGuest(buildCtx, root, binDir, cfg.GuestPackage) })
	wg.Go(func() { cni, cErr = cniPlugins(buildCtx, root) })
	cp := controlplane.StartForTestWith(t, controlplane.Options{ServingIPs: []net.IP{net.ParseIP(vm.ForwardAddr)}})
	wg.Wait()
	if cfg.Context != nil && cfg.Context.Err() != nil {
		t.Log("stopped before the VM booted")
		return
	}
	if err := errors.Join(binErr, guestErr, cErr); err != nil {
		t.Fatal(err)
	}
	t.Logf("control plane and builds ready after %v", time.Since(buildStart).Round(time.Millisecond))

	u, err := url.Parse(cp.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil {
		t.Fatalf("apiserver URL %s: %v", cp.URL, err)
	}
	cfgDir := t.TempDir() // read by the guest through the shared host root
	guestAPI := net.JoinHostPort(vm.ForwardAddr, u.Port())
	out := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"NODENET_CNI_BIN_DIR=" + cni,
		EnvAPIServer + "=" + guestAPI,
		EnvOut + "=" + out,
	}
	// The daemons' logs in the output of a passing run too
	// (test/daemonproc).
	if v := os.Getenv("NODENET_DAEMON_LOGS"); v != "" {
		env = append(env, "NODENET_DAEMON_LOGS="+v)
	}
	adminKC := filepath.Join(cfgDir, "admin.kubeconfig")
	if err := writeKubeconfig(adminKC, "https://"+guestAPI, cp, controlplane.Admin); err != nil {
		t.Fatal(err)
	}
	env = append(env, EnvAdminKubeconfig+"="+adminKC)
	for _, id := range cfg.Identities {
		kc := filepath.Join(cfgDir, string(id)+".kubeconfig")
		if err := writeKubeconfig(kc, "https://"+net.JoinHostPort("127.0.0.1", u.Port()), cp, id); err != nil {
			t.Fatal(err)
		}
		env = append(env, EnvKubeconfigPrefix+strings.ToUpper(string(id))+"="+kc)
	}
	for _, d := range cfg.Daemons {
		env = append(env, EnvBinPrefix+strings.ToUpper(d)+"="+bins[d])
	}
	env = append(env, cfg.Env...)
	if cfg.AdminKubeconfig != "" {
		t.Cleanup(func() { _ = os.Remove(cfg.AdminKubeconfig) })
		if err := writeKubeconfig(cfg.AdminKubeconfig, cp.URL, cp, controlplane.Admin); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(base)
	defer cancel()
	guestTimeout, vmTimeout := time.Duration(0), time.Duration(0) // 0: none, for both
	if cfg.Timeout != NoTimeout {
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		guestTimeout, vmTimeout = cfg.Timeout-30*time.Second, cfg.Timeout
	}
	// -test.v always: the guest's progress streams into this test's output.
	args := []string{guestBin, "-test.v", "-test.timeout=" + guestTimeout.String()}
	if cfg.Run != "" {
		args = append(args, "-test.run="+cfg.Run)
	}
	stdout := cfg.Stdout
	if stdout == nil {
		stdout = t.Output()
	}
	setup := time.Since(begin)
	vmStart := time.Now()
	code, err := vm.Run(ctx, vm.Options{
		Command:      args,
		Env:          env,
		Dir:          filepath.Dir(guestBin),
		Stdout:       stdout,
		Stderr:       t.Output(),
		Log:          t.Output(),
		Forwards:     []vm.Forward{{GuestPort: uint16(port), Host: net.JoinHostPort("127.0.0.1", u.Port())}},
		WritableDirs: []string{out},
		Assets:       &assets,
		MemoryMiB:    cfg.MemoryMiB,
		CPUs:         vmCPUs(cfg.CPUs),
		Modules:      cfg.Modules,
		Timeout:      vmTimeout,
	})
	vmTime := time.Since(vmStart)
	if cfg.Context != nil && cfg.Context.Err() != nil {
		t.Logf("stopped after %v: the VM was killed", vmTime.Round(time.Millisecond))
		return
	}
	failed := err != nil || code != 0
	if failed {
		dumpLogs(t, out)
	}
	timings := fmt.Sprintf("timings: setup (control plane, builds) %v, VM run %v (boot and guest test), total %v",
		setup.Round(time.Millisecond), vmTime.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
	if s, err := os.ReadFile(filepath.Join(out, SummaryFile)); err == nil {
		t.Logf("summary of the guest test:\n%s%s", s, timings)
	} else {
		t.Log(timings)
	}
	switch {
	case err != nil:
		t.Fatalf("VM: %v", err)
	case code != 0:
		t.Fatalf("the guest test failed (exit code %d)", code)
	}
}

// vmCPUs is n, else NODENET_VM_CPUS, else 2.
func vmCPUs(n int) int {
	if n > 0 {
		return n
	}
	if n, err := strconv.Atoi(os.Getenv("NODENET_VM_CPUS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// buildGuest compiles a package's guest half into a test binary.
func buildGuest(ctx context.Context, root, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg)+"-e2e-guest.test")
	return bin, goCmd(ctx, root, "test", "-c", "-tags", "e2eguest", "-o", bin, pkg)
}

func goCmd(ctx context.Context, dir string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// cniPlugins builds the CNI plugins the topology attaches pods with (once,
// cached) and returns their directory: the guest cannot build them.
func cniPlugins(ctx context.Context, root string) (string, error) {
	if d := os.Getenv("NODENET_CNI_BIN_DIR"); d != "" {
		return d, nil
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "build-cni-plugins.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("hack/build-cni-plugins.sh: %v\n%s", err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out)), nil
}

// writeKubeconfig writes id's kubeconfig with another server address than
// the control plane's own (the guest reaches it through a forward).
func writeKubeconfig(path, server string, cp *controlplane.ControlPlane, id controlplane.Identity) error {
	rc := cp.RESTConfig(id)
	const name = "nodenet-e2e"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: rc.CAData}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: rc.BearerToken}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return clientcmd.WriteToFile(*cfg, path)
}

// dumpLogs puts the ends of the logs the guest left into the test output.
func dumpLogs(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		const limit = 64 << 10
		if len(b) > limit {
			b = b[len(b)-limit:]
		}
		t.Logf("----- %s (end) -----\n%s", filepath.Base(l), b)
	}
}
