// Package controller is proxyd's loop: informers on Services,
// EndpointSlices and its Node feed the pure desired-state computation
// (package desired, cached per Service), whose result the reconciler, the
// masquerade table, conntrack and the health check servers apply. Facts
// (the VIPs programmed) go to the coordination API.
package controller

import (
	"errors"
	"fmt"
	"time"

	"github.com/nodenet/nodenet/proxyd/internal/desired"
	"github.com/spf13/pflag"
)

// Config is proxyd's own configuration.
type Config struct {
	Scheduler    string
	NodePortMin  uint16
	NodePortMax  uint16
	DrainTimeout time.Duration
	// StrictARP stops the node answering ARP for VIPs (kube-proxy's
	// strictARP): needed beside layer-2 load balancers such as MetalLB.
	StrictARP bool
	nodePorts string
}

// DefaultConfig returns the defaults (kube-proxy's where it has one).
func DefaultConfig() Config {
	return Config{Scheduler: "rr", NodePortMin: 30000, NodePortMax: 32767, DrainTimeout: 15 * time.Minute, nodePorts: "30000-32767"}
}

// Flags registers proxyd's flags.
func (c *Config) Flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Scheduler, "ipvs-scheduler", c.Scheduler, "IPVS scheduler of Services without the nodenet.io/ipvs-scheduler annotation")
	fs.StringVar(&c.nodePorts, "node-port-range", c.nodePorts, "the cluster's NodePort range: IPVS services on node addresses in it belong to proxyd")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "how long a removed TCP/SCTP endpoint keeps its open connections")
	fs.BoolVar(&c.StrictARP, "strict-arp", c.StrictARP, "set arp_ignore=1 and arp_announce=2 on all interfaces, so the node does not answer ARP for VIPs (needed beside layer-2 load balancers such as MetalLB)")
}

// Validate checks the flags (and finishes parsing the port range).
func (c *Config) Validate() error {
	var errs []error
	if !desired.ValidScheduler(c.Scheduler) {
		errs = append(errs, fmt.Errorf("--ipvs-scheduler %q: want one of rr, wrr, lc, wlc, sh, dh, mh, sed, nq", c.Scheduler))
	}
	var lo, hi int
	if n, err := fmt.Sscanf(c.nodePorts, "%d-%d", &lo, &hi); err != nil || n != 2 || lo < 1 || hi > 65535 || lo > hi {
		errs = append(errs, fmt.Errorf("--node-port-range %q: want FIRST-LAST within 1-65535", c.nodePorts))
	} else {
		c.NodePortMin, c.NodePortMax = uint16(lo), uint16(hi)
	}
	if c.DrainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout %v must be positive", c.DrainTimeout))
	}
	return errors.Join(errs...)
}
