package netns

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
	"sort"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// Pods get their network the way a kubelet's container runtime gives it:
// libcni (what containerd and CRI-O use) executes the real plugin binaries
// with the node's CNI config, once for the loopback network and once for
// the node's pod network.
//
// A CNI plugin treats the network namespace it runs in as the host's and
// creates the pod's veth pair there. Here the "host" is the node's
// namespace, so every plugin process must start inside it: nsExec starts
// the plugin from an OS thread that has joined the node's namespace (a
// forked child inherits the namespaces of the thread that forks), and the
// thread is discarded afterwards. This needs no helper binary and no
// re-exec, works the same on any kernel with network namespaces, and the
// plugins (and the host-local they delegate to) run unmodified.

// cniTimeout bounds one CNI operation (ADD or DEL of a pod).
const cniTimeout = time.Minute

// cniVersion is the spec version of the configs written here.
const cniVersion = "1.0.0"

// bridgeName is the pod bridge on every node, as kube-router names it.
const bridgeName = "kube-bridge"

// cniConfFile is the node's CNI config, written like routerd will write it.
const cniConfFile = "10-nodenet.conflist"

// nsExec implements libcni's invoke.Exec: it runs plugins inside a
// namespace.
type nsExec struct{ ns *NetNS }

func (e nsExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, pluginPath)
	cmd.Env = environ
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := e.ns.Start(cmd); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", filepath.Base(pluginPath), e.ns.Name, err)
	}
	if err := cmd.Wait(); err != nil {
		return nil, pluginError(err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// pluginError turns a failed plugin run into the error the plugin reported:
// per the spec, a JSON error object on stdout.
func pluginError(err error, stdout, stderr []byte) error {
	var perr types.Error
	if len(stdout) > 0 && json.Unmarshal(stdout, &perr) == nil && perr.Msg != "" {
		return &perr
	}
	return fmt.Errorf("plugin failed: %w; stdout %q; stderr %q", err, stdout, stderr)
}

func (e nsExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e nsExec) Decode(b []byte) (version.PluginInfo, error) {
	return (&version.PluginDecoder{}).Decode(b)
}

// bridgeConfList is the node's CNI config: the bridge plugin on
// kube-bridge as the pods' default gateway, hairpin on (a pod reaching
// itself through a service VIP), host-local IPAM from the node's pod CIDR
// with its state in the node's own directory.
func bridgeConfList(podCIDR netip.Prefix, ipamDir string) ([]byte, error) {
	type rangeConf struct {
		Subnet string `json:"subnet"`
	}
	conf := map[string]any{
		"cniVersion": cniVersion,
		"name":       "nodenet",
		"plugins": []map[string]any{{
			"type":             "bridge",
			"bridge":           bridgeName,
			"isDefaultGateway": true,
			"hairpinMode":      true,
			"ipam": map[string]any{
				"type":    "host-local",
				"ranges":  [][]rangeConf{{{Subnet: podCIDR.String()}}},
				"dataDir": ipamDir,
			},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// loopbackConfList brings up lo in a pod. Container runtimes run it as a
// network of its own before the node's network (containerd's
// "cni-loopback"), not as part of the node's config.
func loopbackConfList() (*libcni.NetworkConfigList, error) {
	return libcni.NetworkConfFromBytes([]byte(`{"cniVersion":"` + cniVersion + `","name":"cni-loopback","plugins":[{"type":"loopback"}]}`))
}

// writeFileAtomic writes a config the way a daemon should, so a reader never
// sees half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// loadNodeConfList loads the node's network config as a runtime does: the
// first .conflist in the config dir in lexical order. No config means the
// node's network is not ready (nothing wrote it yet): pods cannot start.
func loadNodeConfList(dir string) (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(dir, []string{".conflist"})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("network not ready: no CNI config (.conflist) in %s", dir)
	}
	sort.Strings(files)
	return libcni.NetworkConfFromFile(files[0])
}

// podAttachment is what a pod's CNI ADD produced and its DEL needs.
type podAttachment struct {
	rt       *libcni.RuntimeConf
	loopRT   *libcni.RuntimeConf
	network  *libcni.NetworkConfigList
	loopback *libcni.NetworkConfigList
	ip       netip.Addr
	mac      net.HardwareAddr
}

// cniAdd attaches the pod namespace at nsPath to the node: ADD on the
// loopback network, then on the node's network, as a runtime does.
func cniAdd(ctx context.Context, cni *libcni.CNIConfig, confDir, containerID, podName, nsPath string) (*podAttachment, error) {
	network, err := loadNodeConfList(confDir)
	if err != nil {
		return nil, err
	}
	loopback, err := loopbackConfList()
	if err != nil {
		return nil, err
	}
	// The CNI_ARGS a kubelet's runtime passes; IgnoreUnknown lets plugins
	// that do not know the K8S_* keys accept them.
	args := [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", "default"},
		{"K8S_POD_NAME", podName},
		{"K8S_POD_INFRA_CONTAINER_ID", containerID},
	}
	a := &podAttachment{
		rt:       &libcni.RuntimeConf{ContainerID: containerID, NetNS: nsPath, IfName: "eth0", Args: args},
		loopRT:   &libcni.RuntimeConf{ContainerID: containerID, NetNS: nsPath, IfName: "lo", Args: args},
		network:  network,
		loopback: loopback,
	}
	if _, err := cni.AddNetworkList(ctx, loopback, a.loopRT); err != nil {
		return nil, fmt.Errorf("CNI ADD %s: %w", loopback.Name, err)
	}
	res, err := cni.AddNetworkList(ctx, network, a.rt)
	if err != nil {
		// Undo what the plugins may have done half-way, as a runtime does.
		_ = cniDel(context.WithoutCancel(ctx), cni, a)
		return nil, fmt.Errorf("CNI ADD %s: %w", network.Name, err)
	}
	if a.ip, a.mac, err = podAddress(res, a.rt.IfName); err != nil {
		_ = cniDel(context.WithoutCancel(ctx), cni, a)
		return nil, fmt.Errorf("CNI ADD %s: %w", network.Name, err)
	}
	return a, nil
}

// cniDel detaches a pod: DEL in the reverse order of ADD. Both always run.
func cniDel(ctx context.Context, cni *libcni.CNIConfig, a *podAttachment) error {
	var errs []error
	if err := cni.DelNetworkList(ctx, a.network, a.rt); err != nil {
		errs = append(errs, fmt.Errorf("CNI DEL %s: %w", a.network.Name, err))
	}
	if err := cni.DelNetworkList(ctx, a.loopback, a.loopRT); err != nil {
		errs = append(errs, fmt.Errorf("CNI DEL %s: %w", a.loopback.Name, err))
	}
	return errors.Join(errs...)
}

// podAddress picks the pod's IPv4 address and MAC on ifName from an ADD
// result.
func podAddress(res types.Result, ifName string) (netip.Addr, net.HardwareAddr, error) {
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return netip.Addr{}, nil, err
	}
	for _, ipc := range r.IPs {
		if ipc.Interface == nil || *ipc.Interface < 0 || *ipc.Interface >= len(r.Interfaces) {
			continue
		}
		iface := r.Interfaces[*ipc.Interface]
		if iface.Name != ifName || iface.Sandbox == "" {
			continue
		}
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok || !a.Unmap().Is4() {
			continue
		}
		mac, _ := net.ParseMAC(iface.Mac)
		return a.Unmap(), mac, nil
	}
	return netip.Addr{}, nil, fmt.Errorf("no IPv4 address for %s in the result %+v", ifName, r)
}
