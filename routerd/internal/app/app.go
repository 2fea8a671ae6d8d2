// Package app assembles routerd from its parts: the daemon skeleton's Spec
// with routerd's flags, the controller, the BGP speaker, the kernel
// adapters and cleanup.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/kube"
	"github.com/nodenet/nodenet/internal/version"
	"github.com/nodenet/nodenet/routerd/internal/bgp"
	"github.com/nodenet/nodenet/routerd/internal/controller"
	"github.com/nodenet/nodenet/routerd/internal/egress"
	"github.com/nodenet/nodenet/routerd/internal/podnet"
	"github.com/nodenet/nodenet/routerd/internal/routercmd"
	"github.com/nodenet/nodenet/routerd/internal/routes"
	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
)

// Spec is routerd's daemon.Spec.
func Spec() daemon.Spec {
	cfg := controller.DefaultConfig()
	return daemon.Spec{
		Name:        "routerd",
		MetricsPort: 10280,
		// A route learned waits for a sync: a sync with nothing but
		// routes to change costs a few ms at thousands of routes.
		SyncMinInterval: 20 * time.Millisecond,
		Flags:           cfg.Flags,
		Validate:        cfg.Validate,
		NewController:   func(deps daemon.Deps) (daemon.Controller, error) { return newController(deps, cfg) },
		Cleanup:         func(_ context.Context, log *zap.Logger, _ config.Common) error { return cleanup(log, cfg) },
		Commands:        routercmd.Commands(),
	}
}

func newController(deps daemon.Deps, cfg *controller.Config) (daemon.Controller, error) {
	restCfg, err := kube.RESTConfig(deps.Config.Kubeconfig, "routerd/"+version.Get().Version)
	if err != nil {
		return nil, err
	}
	client, err := kube.NewClient(restCfg)
	if err != nil {
		return nil, err
	}
	handle, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	k := controller.Kernel{
		Speaker:    bgp.New(deps.Log.Named("bgp")),
		Routes:     routeTable{routes.New(routes.Config{Protocol: cfg.RouteProtocol})},
		Masquerade: &masquerade{t: egress.New(egress.Config{})},
		PodNetwork: &podNetwork{h: handle, cfg: cfg},
	}
	return controller.New(deps, cfg, client, k, kube.EventRecorder(client, "routerd", deps.Config.NodeName)), nil
}

// cleanup removes what routerd owns: its routes and tunnels, its table and
// its CNI config. The bridge stays: pods may still be attached to it.
func cleanup(log *zap.Logger, cfg *controller.Config) error {
	var errs []error
	if err := routes.New(routes.Config{Protocol: cfg.RouteProtocol}).Delete(); err != nil {
		errs = append(errs, fmt.Errorf("routes and tunnels: %w", err))
	}
	if err := egress.New(egress.Config{}).Delete(); err != nil {
		errs = append(errs, fmt.Errorf("masquerade table: %w", err))
	}
	if err := podnet.RemoveConfList(cfg.CNIConfDir, cfg.CNIConfFile); err != nil {
		errs = append(errs, fmt.Errorf("CNI config: %w", err))
	}
	if len(errs) == 0 {
		log.Info("removed routerd's routes, tunnels, masquerade table and CNI config")
	}
	return errors.Join(errs...)
}
