package controller

import (
	"fmt"

	"github.com/spf13/pflag"
)

// Config is firewalld's own configuration (flags and NODENET_* variables).
type Config struct {
	// LogGroup is the nflog group dropped packets are logged to; 0 logs
	// nothing.
	LogGroup uint16
	// LogRate and LogBurst limit the logging, per target group, in packets
	// per second.
	LogRate, LogBurst uint32
	// BridgeNetfilter makes bridged traffic (pods of this node talking on
	// the CNI bridge) pass through the inet hooks, where policies are
	// enforced: net.bridge.bridge-nf-call-iptables=1 (and ip6tables). Off
	// only for CNIs that route every pod packet (no bridge).
	BridgeNetfilter bool
}

// DefaultConfig is the configuration without flags.
func DefaultConfig() *Config {
	return &Config{LogRate: 10, LogBurst: 20, BridgeNetfilter: true}
}

// Flags registers the flags.
func (c *Config) Flags(fs *pflag.FlagSet) {
	fs.Uint16Var(&c.LogGroup, "log-drops-group", c.LogGroup, "nflog group to log dropped packets to (0: do not log)")
	fs.Uint32Var(&c.LogRate, "log-drops-rate", c.LogRate, "dropped packets logged per second, per target group")
	fs.Uint32Var(&c.LogBurst, "log-drops-burst", c.LogBurst, "burst of dropped packets logged beyond the rate")
	fs.BoolVar(&c.BridgeNetfilter, "bridge-netfilter", c.BridgeNetfilter, "set net.bridge.bridge-nf-call-iptables/ip6tables=1 so that traffic between pods on the CNI bridge is policed (needs the br_netfilter module)")
}

// Validate checks the flags.
func (c *Config) Validate() error {
	if c.LogGroup > 0 && c.LogRate == 0 {
		return fmt.Errorf("--log-drops-rate must be positive when --log-drops-group is set")
	}
	return nil
}
