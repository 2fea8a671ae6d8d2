//go:build e2e && !e2eguest

package proxyd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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

// vmTimeout bounds the VM run, boot included. A passing run takes a
// fraction of it (TCG runs Go about 13 times slower than the host).
const vmTimeout = 8 * time.Minute

// TestProxydInVM runs the guest half (guest_test.go) in a VM against a
// control plane on the host; see the package comment.
func TestProxydInVM(t *testing.T) {
	begin := time.Now()
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
	// first (a skip: no control plane binaries), they are stopped and
	// waited for before its temporary directories go.
	binDir := t.TempDir()
	var (
		wg                        sync.WaitGroup
		proxydBin, guestBin, cni  string
		proxydErr, guestErr, cErr error
	)
	buildCtx, stopBuilds := context.WithCancel(t.Context())
	defer func() {
		stopBuilds()
		wg.Wait()
	}()
	buildStart := time.Now()
	wg.Go(func() { proxydBin, proxydErr = buildProxyd(buildCtx, root, binDir) })
	wg.Go(func() { guestBin, guestErr = buildGuest(buildCtx, root, binDir) })
	wg.Go(func() { cni, cErr = cniPlugins(buildCtx, root) })
	cp := controlplane.StartForTestWith(t, controlplane.Options{ServingIPs: []net.IP{net.ParseIP(vm.ForwardAddr)}})
	wg.Wait()
	if err := errors.Join(proxydErr, guestErr, cErr); err != nil {
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
	adminKC := filepath.Join(cfgDir, "admin.kubeconfig")
	proxydKC := filepath.Join(cfgDir, "proxyd.kubeconfig")
	if err := writeKubeconfig(adminKC, "https://"+guestAPI, cp, controlplane.Admin); err != nil {
		t.Fatal(err)
	}
	if err := writeKubeconfig(proxydKC, "https://"+net.JoinHostPort("127.0.0.1", u.Port()), cp, controlplane.Proxyd); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()

	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"NODENET_CNI_BIN_DIR=" + cni,
		EnvProxyd + "=" + proxydBin,
		EnvAdminKubeconfig + "=" + adminKC,
		EnvProxydKubeconfig + "=" + proxydKC,
		EnvAPIServer + "=" + guestAPI,
		EnvOut + "=" + out,
	}
	ctx, cancel := context.WithTimeout(t.Context(), vmTimeout)
	defer cancel()
	// -test.v always: the guest's progress streams into this test's output.
	args := []string{guestBin, "-test.v", "-test.timeout=" + (vmTimeout - 30*time.Second).String()}
	setup := time.Since(begin)
	vmStart := time.Now()
	code, err := vm.Run(ctx, vm.Options{
		Command:      args,
		Env:          env,
		Dir:          filepath.Dir(guestBin),
		Stdout:       t.Output(),
		Stderr:       t.Output(),
		Log:          t.Output(),
		Forwards:     []vm.Forward{{GuestPort: uint16(port), Host: net.JoinHostPort("127.0.0.1", u.Port())}},
		WritableDirs: []string{out},
		Assets:       &assets,
		CPUs:         vmCPUs(),
		Timeout:      vmTimeout,
	})
	vmTime := time.Since(vmStart)
	if err != nil || code != 0 {
		dumpLogs(t, out)
		if err != nil {
			t.Fatalf("VM: %v", err)
		}
		t.Fatalf("the guest test failed (exit code %d)", code)
	}
	t.Logf("timings: setup (control plane, builds) %v, VM run %v (boot and guest test), total %v",
		setup.Round(time.Millisecond), vmTime.Round(time.Millisecond), time.Since(begin).Round(time.Millisecond))
}

// vmCPUs is NODENET_VM_CPUS, else 2: proxyd and the guest test are two
// busy Go processes, and QEMU runs one TCG thread per vCPU.
func vmCPUs() int {
	if n, err := strconv.Atoi(os.Getenv("NODENET_VM_CPUS")); err == nil && n > 0 {
		return n
	}
	return 2
}

// buildProxyd builds the proxyd binary as test/binaries does (version
// stamped; no -trimpath, so it shares the build cache with the test
// binaries), unless NODENET_BIN_DIR names prebuilt daemons.
func buildProxyd(ctx context.Context, root, dir string) (string, error) {
	if pre := os.Getenv("NODENET_BIN_DIR"); pre != "" {
		p := filepath.Join(pre, "proxyd")
		_, err := os.Stat(p)
		return p, err
	}
	bin := filepath.Join(dir, "proxyd")
	ldflags := "-X github.com/nodenet/nodenet/internal/version.Version=" + binaries.TestVersion +
		" -X github.com/nodenet/nodenet/internal/version.Commit=e2e"
	return bin, goCmd(ctx, root, "build", "-ldflags", ldflags, "-o", bin, "./proxyd/cmd/proxyd")
}

// buildGuest compiles this package's guest half into a test binary.
func buildGuest(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "proxyd-e2e-guest.test")
	return bin, goCmd(ctx, root, "test", "-c", "-tags", "e2eguest", "-o", bin, "./test/e2e/proxyd")
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

// dumpLogs puts the logs the guest left (proxyd's) into the test output.
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
