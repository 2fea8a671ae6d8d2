package controlplane

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
)

// The cluster's address plan, all inside 198.18.0.0/15 (DESIGN: the
// benchmarking range, never routed anywhere).
const (
	// NodeCIDR holds the nodes' InternalIPs.
	NodeCIDR = "198.18.0.0/24"
	// ClusterCIDR is split by kube-controller-manager into one /24 per node
	// (NodeCIDRMaskSize): the nodes' spec.podCIDR.
	ClusterCIDR      = "198.18.128.0/17"
	NodeCIDRMaskSize = 24
	// ServiceCIDR is where ClusterIPs come from; the kubernetes Service
	// takes its first address.
	ServiceCIDR = "198.19.0.0/16"
)

// kubernetesServiceIP is the first address of ServiceCIDR, the apiserver's
// own Service; its serving certificate must name it.
func kubernetesServiceIP() net.IP {
	return net.IP(netip.MustParsePrefix(ServiceCIDR).Addr().Next().AsSlice())
}

// Options configure Start. The zero value is fine.
type Options struct {
	// Dir holds keys, tokens, kubeconfigs, etcd's data and the logs. Empty:
	// a new temporary directory that Stop removes.
	Dir string
	// Build allows Start to build missing binaries (hack/build-controlplane.sh,
	// about 8 minutes cold on 2 cores). Without it, Start returns
	// ErrBinariesMissing.
	Build bool
	// BuildLog receives the build's progress; os.Stderr when nil.
	BuildLog io.Writer
	// StartTimeout bounds start-up once the binaries are there; 60 s when zero.
	StartTimeout time.Duration
	// StopGrace, when positive, makes Stop send SIGTERM and give each
	// process that long to exit before it is killed. Zero: SIGKILL at once.
	// Everything a control plane stores dies with it, so a graceful
	// shutdown buys a test nothing but time (the apiserver's takes 1-4 s).
	StopGrace time.Duration
	// ServingIPs are more addresses the apiserver's serving certificate
	// names, besides loopback and the kubernetes Service's IP: addresses
	// clients reach it at through a forward, such as a VM's (vm.ForwardAddr).
	ServingIPs []net.IP
}

// ControlPlane is a running etcd, kube-apiserver and kube-controller-manager.
type ControlPlane struct {
	// Dir holds the keys, kubeconfigs, etcd's data and the logs
	// (etcd.log, kube-apiserver.log, kube-controller-manager.log).
	Dir string
	// URL is the apiserver's, https://127.0.0.1:<port>.
	URL string
	// Admin is a clientset acting as Admin (system:masters).
	Admin *kubernetes.Clientset
	// StartDuration is how long Start took, binaries given.
	StartDuration time.Duration

	opts     Options
	ownDir   bool
	bins     map[string]string
	pki      *pki
	tokens   map[Identity]string
	spawner  *spawner
	procs    []*process // in start order; stopped in reverse
	stopOnce sync.Once
}

// Start starts a control plane and returns once the apiserver is ready, the
// daemons' RBAC is applied and kube-controller-manager is healthy. On error
// nothing is left running. Call Stop when done.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	if opts.BuildLog == nil {
		opts.BuildLog = os.Stderr
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = time.Minute
	}
	bins, err := binaryPaths(ctx, opts.Build, opts.BuildLog)
	if err != nil {
		return nil, err
	}

	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	cp := &ControlPlane{Dir: opts.Dir, opts: opts, bins: bins}
	if cp.Dir == "" {
		if cp.Dir, err = os.MkdirTemp("", "nodenet-controlplane-"); err != nil {
			return nil, err
		}
		cp.ownDir = true
	}
	cp.spawner = newSpawner()
	ok := false
	defer func() {
		if !ok {
			cp.Stop()
		}
	}()
	if err := cp.start(ctx); err != nil {
		return nil, err
	}
	cp.StartDuration = time.Since(begin)
	ok = true
	return cp, nil
}

func (cp *ControlPlane) start(ctx context.Context) error {
	var err error
	if cp.pki, err = newPKI(cp.Dir, append([]net.IP{kubernetesServiceIP()}, cp.opts.ServingIPs...)...); err != nil {
		return fmt.Errorf("keys and certificates: %w", err)
	}
	if cp.tokens, err = newTokens(); err != nil {
		return err
	}
	if err := writeTokenFile(cp.tokenFile(), cp.tokens); err != nil {
		return err
	}

	etcd, etcdURL, err := cp.startEtcd(ctx)
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, etcd)

	apiserver, url, err := cp.startAPIServer(ctx, etcdURL)
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, apiserver)
	cp.URL = url
	if err := cp.writeKubeconfigs(); err != nil {
		return err
	}
	if cp.Admin, err = cp.Client(Admin); err != nil {
		return err
	}
	if err := applyRBAC(ctx, cp.Admin); err != nil {
		return err
	}

	kcm, err := cp.startControllerManager(ctx)
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, kcm)
	return nil
}

// Stop stops kube-controller-manager, then the apiserver, then etcd (an
// apiserver that outlives etcd spends its end retrying it), each one reaped
// before the next is signalled, by SIGKILL to its process group (preceded by
// SIGTERM when Options.StopGrace is set), and removes Dir when Start created
// it. Safe to call more than once.
func (cp *ControlPlane) Stop() {
	cp.stopOnce.Do(func() {
		for i := len(cp.procs) - 1; i >= 0; i-- {
			cp.procs[i].stop(cp.opts.StopGrace)
		}
		cp.spawner.close()
		if cp.ownDir {
			_ = os.RemoveAll(cp.Dir)
		}
	})
}

// PIDs are the process ids of the processes started, by binary name.
func (cp *ControlPlane) PIDs() map[string]int {
	pids := map[string]int{}
	for _, p := range cp.procs {
		pids[p.name] = p.cmd.Process.Pid
	}
	return pids
}

// CACert is the PEM certificate clients verify the apiserver with.
func (cp *ControlPlane) CACert() []byte { return cp.pki.caPEM }

// LogTails returns the end (up to limit bytes each) of every process's log,
// by binary name. After Stop, only when Options.Dir was given (Stop removes
// a directory of its own).
func (cp *ControlPlane) LogTails(limit int64) map[string]string {
	logs := map[string]string{}
	for _, p := range cp.procs {
		logs[p.name] = p.tail(limit)
	}
	return logs
}

func (cp *ControlPlane) tokenFile() string { return filepath.Join(cp.Dir, "tokens.csv") }

// env is the whole environment of the processes: nothing of the caller's.
func (cp *ControlPlane) env() []string {
	return []string{"HOME=" + cp.Dir, "TMPDIR=" + cp.Dir, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
}
