// Package app assembles proxyd from its parts: the daemon skeleton's Spec
// with proxyd's flags, controller, kernel adapters and cleanup.
package app

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/kube"
	isysctl "github.com/nodenet/nodenet/internal/sysctl"
	"github.com/nodenet/nodenet/internal/version"
	"github.com/nodenet/nodenet/proxyd/internal/conntrack"
	"github.com/nodenet/nodenet/proxyd/internal/controller"
	"github.com/nodenet/nodenet/proxyd/internal/healthcheck"
	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/nft"
	"github.com/nodenet/nodenet/proxyd/internal/reconcile"
	"github.com/nodenet/nodenet/proxyd/internal/sysctl"
	"github.com/nodenet/nodenet/proxyd/internal/tracecmd"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
)

// Spec is proxyd's daemon.Spec.
func Spec() daemon.Spec {
	cfg := controller.DefaultConfig()
	return daemon.Spec{
		Name:          "proxyd",
		MetricsPort:   10281,
		Flags:         cfg.Flags,
		Validate:      cfg.Validate,
		NewController: func(deps daemon.Deps) (daemon.Controller, error) { return newController(deps, cfg) },
		Cleanup:       func(ctx context.Context, log *zap.Logger, _ config.Common) error { return cleanup(log, cfg) },
		Prepare:       func(_ context.Context, log *zap.Logger, _ config.Common) error { return prepare(log, cfg) },
		Commands:      map[string]daemon.Command{"trace": tracecmd.Command()},
	}
}

// prepare writes the kernel settings run relies on (the chart's privileged
// init container), IPVS opened first: that loads ip_vs, without which the
// net.ipv4.vs.* settings do not exist.
func prepare(log *zap.Logger, cfg controller.Config) error {
	k, err := ipvs.NewKernel()
	if err != nil {
		return fmt.Errorf("IPVS: %w", err)
	}
	defer k.Close()
	n, err := (isysctl.Sysctl{}).Apply(kernelSettings(cfg))
	log.Info("kernel settings", zap.Int("written", n))
	return err
}

// kernel opens proxyd's kernel adapters in the current network namespace;
// writes, when not nil, counts what they write.
func kernel(cfg controller.Config, writes *kernelWrites) (*reconcile.Reconciler, *nft.Table, func(), error) {
	ipvsK, err := ipvs.NewKernel()
	if err != nil {
		return nil, nil, nil, err
	}
	routes, err := vip.NewKernel(netns.None())
	if err != nil {
		_ = ipvsK.Close()
		return nil, nil, nil, err
	}
	var ipvsIf ipvs.Interface = ipvsK
	var routesIf vip.Interface = routes
	if writes != nil {
		ipvsIf, routesIf = countingIPVS{ipvsK, writes}, countingRoutes{routes, writes}
	}
	rec := reconcile.New(reconcile.Config{NodePortMin: cfg.NodePortMin, NodePortMax: cfg.NodePortMax, DrainTimeout: cfg.DrainTimeout}, ipvsIf, routesIf)
	closeAll := func() {
		_ = ipvsK.Close()
		_ = routes.Close()
	}
	return rec, nft.New(nft.Config{}), closeAll, nil
}

func newController(deps daemon.Deps, cfg controller.Config) (daemon.Controller, error) {
	writes := newKernelWrites(deps.Metrics)
	// IPVS first: opening its netlink family loads ip_vs on a node that
	// has not loaded it yet, and with it the net.ipv4.vs.* settings,
	// which do not exist before.
	rec, table, closeKernel, err := kernel(cfg, writes)
	if err != nil {
		return nil, err
	}
	n, err := (isysctl.Sysctl{}).Apply(kernelSettings(cfg))
	writes.add(writesSysctl, n)
	if err != nil {
		closeKernel()
		return nil, fmt.Errorf("kernel settings: %w", err)
	}
	restCfg, err := kube.RESTConfig(deps.Config.Kubeconfig, "proxyd/"+version.Get().Version)
	if err != nil {
		return nil, err
	}
	client, err := kube.NewClient(restCfg)
	if err != nil {
		return nil, err
	}
	handle, err := netlink.NewHandle()
	if err != nil {
		return nil, err
	}
	return controller.New(deps, cfg, client, controller.Kernel{
		Reconciler:   rec,
		Masquerade:   masquerade{table, writes},
		Conntrack:    countingConntrack{&conntrack.Netlink{Handle: handle}, writes},
		HealthChecks: healthcheck.New(deps.Log, healthcheck.ListenAll, deps.Healthy),
	}, kube.EventRecorder(client, "proxyd", deps.Config.NodeName)), nil
}

// kernelSettings are the sysctls proxyd sets: kube-proxy's IPVS ones, and
// strict ARP when asked for.
func kernelSettings(cfg controller.Config) []isysctl.Setting {
	s := sysctl.Required()
	if cfg.StrictARP {
		s = append(s, sysctl.StrictARP()...)
	}
	return s
}

// masquerade adapts the nft table to the controller.
type masquerade struct {
	t      *nft.Table
	writes *kernelWrites
}

func (m masquerade) Apply(state model.State, podCIDRs []netip.Prefix, full bool) (int, error) {
	if full {
		m.t.Invalidate()
	}
	res, err := m.t.Apply(nft.Build(state, podCIDRs))
	m.writes.add(writesNFTables, res.Writes)
	return res.Writes, err
}

// cleanup removes exactly what proxyd owns: a sync to the empty state
// deletes its virtual services and VIP routes (and nothing it does not own),
// then its nftables table goes.
func cleanup(log *zap.Logger, cfg controller.Config) error {
	rec, table, closeAll, err := kernel(cfg, nil)
	if err != nil {
		return err
	}
	defer closeAll()
	// NodePort services sit on node addresses: every local address counts.
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list the node's addresses: %w", err)
	}
	var nodeIPs []netip.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			nodeIPs = append(nodeIPs, ip.Unmap())
		}
	}
	res, err := rec.Sync(model.State{}, nodeIPs, true)
	log.Info("removed proxyd's IPVS services and VIP routes", zap.Int("writes", res.Writes))
	return errors.Join(err, table.Delete())
}
