// Package app assembles firewalld from its parts: the daemon skeleton's
// Spec with firewalld's flags, controller, nftables table and cleanup.
package app

import (
	"context"
	"time"

	"github.com/nodenet/nodenet/firewalld/internal/controller"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/firewalld/internal/nft"
	"github.com/nodenet/nodenet/firewalld/internal/tracecmd"
	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/kube"
	"github.com/nodenet/nodenet/internal/sysctl"
	"github.com/nodenet/nodenet/internal/version"
	"go.uber.org/zap"
)

// Spec is firewalld's daemon.Spec.
func Spec() daemon.Spec {
	cfg := controller.DefaultConfig()
	return daemon.Spec{
		Name:        "firewalld",
		MetricsPort: 10282,
		// A new pod's traffic waits for firewalld to know it (the pending
		// protection), and a sync after a pod change costs a millisecond:
		// coalesce over 100 ms, not the shared second.
		SyncMinInterval: 100 * time.Millisecond,
		Flags:           cfg.Flags,
		Validate:        cfg.Validate,
		NewController:   func(deps daemon.Deps) (daemon.Controller, error) { return newController(deps, cfg) },
		Commands:        map[string]daemon.Command{"trace": tracecmd.Command()},
		Cleanup: func(_ context.Context, log *zap.Logger, _ config.Common) error {
			log.Info("removing firewalld's nftables table")
			return nft.New(tableConfig(cfg)).Delete()
		},
		// The chart's privileged init container: the bridge settings,
		// when firewalld polices bridged traffic.
		Prepare: func(_ context.Context, log *zap.Logger, _ config.Common) error {
			if !cfg.BridgeNetfilter {
				log.Info("--bridge-netfilter=false: no kernel setting to write")
				return nil
			}
			n, err := (sysctl.Sysctl{}).Apply(bridgeSettings())
			log.Info("kernel settings", zap.Int("written", n))
			return err
		},
	}
}

func tableConfig(cfg *controller.Config) nft.Config {
	return nft.Config{LogGroup: cfg.LogGroup, LogRate: cfg.LogRate, LogBurst: cfg.LogBurst}
}

func newController(deps daemon.Deps, cfg *controller.Config) (daemon.Controller, error) {
	restCfg, err := kube.RESTConfig(deps.Config.Kubeconfig, "firewalld/"+version.Get().Version)
	if err != nil {
		return nil, err
	}
	client, err := kube.NewClient(restCfg)
	if err != nil {
		return nil, err
	}
	var prepare func() error
	if cfg.BridgeNetfilter {
		prepare = func() error {
			_, err := (sysctl.Sysctl{}).Apply(bridgeSettings())
			return err
		}
	}
	return controller.New(deps, client, table{nft.New(tableConfig(cfg))}, prepare, kube.EventRecorder(client, "firewalld", deps.Config.NodeName)), nil
}

// bridgeSettings make packets bridged between pods of this node go through
// the inet hooks; without them same-node pod traffic bypasses the policies.
// They exist once the br_netfilter module is loaded (by the node's setup:
// firewalld does not load modules).
func bridgeSettings() []sysctl.Setting {
	return []sysctl.Setting{
		{Name: "net.bridge.bridge-nf-call-iptables", Value: "1", Why: "police IPv4 traffic between pods on the node's bridge (needs the br_netfilter module)"},
		{Name: "net.bridge.bridge-nf-call-ip6tables", Value: "1", Why: "police IPv6 traffic between pods on the node's bridge (needs the br_netfilter module)"},
	}
}

// table adapts the nftables table to the controller.
type table struct{ t *nft.Table }

func (a table) Apply(d *model.Datapath) (int, error) {
	res, err := a.t.Apply(d)
	return res.Writes, err
}

// ApplyDelta writes what the compile's delta says (the table falls back to
// Apply when it does not trust what it wrote last).
func (a table) ApplyDelta(d *model.Datapath, delta *model.Delta) (int, error) {
	res, err := a.t.ApplyDelta(d, delta)
	return res.Writes, err
}

func (a table) Invalidate() { a.t.Invalidate() }

func (a table) Drops() (controller.Drops, error) {
	c, err := a.t.Counters()
	if err != nil {
		return controller.Drops{}, err
	}
	return dropsFrom(c), nil
}

func dropsFrom(c nft.Counters) controller.Drops {
	d := controller.Drops{Pending: c.Pending.Packets, Groups: make(map[controller.GroupKey]uint64, len(c.Denied))}
	for k, v := range c.Denied {
		d.Groups[controller.GroupKey{Direction: k.Direction, ID: k.ID}] = v.Packets
	}
	return d
}
