//go:build kernel

package podnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The reference CNI plugins the test runs: those `make cni-plugins`
// builds (hack/build-cni-plugins.sh; keep the version in step with it and
// with test/netns/cniplugins.go).
const cniPluginsVersion = "v1.9.1"

// cniBinDir is $NODENET_CNI_BIN_DIR, else the cache `make cni-plugins`
// fills; the test skips when the plugins are not there.
func cniBinDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("NODENET_CNI_BIN_DIR")
	if dir == "" {
		cache := os.Getenv("NODENET_CACHE")
		if cache == "" {
			user, err := os.UserCacheDir()
			if err != nil {
				t.Skipf("CNI plugins: %v (set NODENET_CNI_BIN_DIR, or run make cni-plugins)", err)
			}
			cache = filepath.Join(user, "nodenet")
		}
		dir = filepath.Join(cache, "cni", cniPluginsVersion)
	}
	for _, p := range []string{"bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Skipf("CNI plugin %s not in %s: run make cni-plugins (or set NODENET_CNI_BIN_DIR)", p, dir)
		}
	}
	return dir
}

// nsExec runs the plugins inside the node's namespace, the "host" a
// plugin works in: a child forked from a thread in a namespace starts in
// it.
type nsExec struct{ node netns.NsHandle }

func (e nsExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path)
	cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = environ, bytes.NewReader(stdin), &stdout, &stderr
	if err := netnstest.InNetns(e.node, cmd.Start); err != nil {
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		var perr types.Error
		if json.Unmarshal(stdout.Bytes(), &perr) == nil && perr.Msg != "" {
			return nil, &perr
		}
		return nil, fmt.Errorf("%s: %w; stderr %q", filepath.Base(path), err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

func (nsExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (nsExec) Decode(b []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(b)
}

// TestConfListCNIAdd attaches a pod with the rendered config through the
// real bridge and host-local plugins, driven by libcni as a runtime drives
// them, onto a bridge EnsureBridge made: the pod gets an address of the
// pod CIDR and reaches the gateway, and the plugins leave the bridge as
// EnsureBridge wants it (fixed MAC included).
func TestConfListCNIAdd(t *testing.T) {
	binDir := cniBinDir(t)
	node, pod := netnstest.New(t), netnstest.New(t)
	h := netnstest.Handle(t, node)
	cidr := netip.MustParsePrefix("198.18.128.0/24")
	gw, _ := Gateway(cidr)
	mac, _ := BridgeMAC(cidr)
	spec := BridgeSpec{Name: DefaultBridge, MTU: 1400, Gateways: []netip.Prefix{gw}, HardwareAddr: mac}
	ensure(t, h, spec, true, "bridge")

	confDir := t.TempDir()
	data, err := ConfList(Config{MTU: 1400, PodCIDRs: []netip.Prefix{cidr}, IPAMDataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteConfList(confDir, "", data); err != nil {
		t.Fatal(err)
	}
	list, err := libcni.NetworkConfFromFile(filepath.Join(confDir, DefaultConfFile))
	if err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfigWithCacheDir([]string{binDir}, t.TempDir(), nsExec{node: node})
	rt := &libcni.RuntimeConf{
		ContainerID: "podnet-test",
		// The plugin process opens the pod's namespace through this
		// process's descriptor.
		NetNS:  fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(pod)),
		IfName: "eth0",
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	res, err := cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		t.Fatalf("CNI ADD: %v", err)
	}
	t.Cleanup(func() {
		if err := cni.DelNetworkList(context.WithoutCancel(ctx), list, rt); err != nil {
			t.Errorf("CNI DEL: %v", err)
		}
	})
	r, err := current.NewResultFromResult(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.IPs) != 1 {
		t.Fatalf("ADD result has %d addresses, want 1: %v", len(r.IPs), r)
	}
	podIP, _ := netip.AddrFromSlice(r.IPs[0].Address.IP.To4())
	if !cidr.Contains(podIP) || podIP == gw.Addr() || r.IPs[0].Gateway.String() != gw.Addr().String() {
		t.Fatalf("pod address %s, gateway %s; want one of %s via %s", podIP, r.IPs[0].Gateway, cidr, gw.Addr())
	}

	// The pod's default route is the bridge's gateway, and it gets there.
	ph := netnstest.Handle(t, pod)
	routes, err := ph.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	defaultVia := ""
	for _, route := range routes {
		if route.Dst == nil || route.Dst.String() == "0.0.0.0/0" {
			defaultVia = route.Gw.String()
		}
	}
	if defaultVia != gw.Addr().String() {
		t.Errorf("pod's default route via %q, want %s", defaultVia, gw.Addr())
	}
	eth0, err := ph.LinkByName("eth0")
	if err != nil || eth0.Attrs().MTU != 1400 {
		t.Errorf("pod's eth0: %v, MTU %v; want MTU 1400", err, eth0)
	}
	tcpToGateway(t, node, pod, gw.Addr())

	// The plugins left the bridge as EnsureBridge wants it: its MAC stayed
	// although a port joined.
	ensure(t, h, spec, false, "after CNI ADD")
}

// tcpToGateway connects from the pod to a listener on the node's gateway
// address.
func tcpToGateway(t *testing.T, node, pod netns.NsHandle, gw netip.Addr) {
	t.Helper()
	var ln net.Listener
	if err := netnstest.InNetns(node, func() (err error) {
		ln, err = net.Listen("tcp4", net.JoinHostPort(gw.String(), "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_ = c.Close()
		}
		accepted <- err
	}()
	if err := netnstest.InNetns(pod, func() error {
		c, err := net.DialTimeout("tcp4", ln.Addr().String(), 10*time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}); err != nil {
		t.Fatalf("pod to gateway %s: %v", ln.Addr(), err)
	}
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal(errors.New("the node accepted no connection"))
	}
}
