package app

import (
	"testing"

	"github.com/nodenet/nodenet/proxyd/internal/controller"
)

func TestStrictARPFlagAddsTheARPSettings(t *testing.T) {
	has := func(cfg controller.Config, name string) bool {
		for _, s := range kernelSettings(cfg) {
			if s.Name == name {
				return true
			}
		}
		return false
	}
	cfg := controller.DefaultConfig()
	if has(cfg, "net.ipv4.conf.all.arp_ignore") {
		t.Error("arp_ignore set without --strict-arp")
	}
	if !has(cfg, "net.ipv4.vs.conntrack") {
		t.Error("the IPVS settings are missing")
	}
	cfg.StrictARP = true
	if !has(cfg, "net.ipv4.conf.all.arp_ignore") || !has(cfg, "net.ipv4.conf.all.arp_announce") {
		t.Error("--strict-arp does not set arp_ignore and arp_announce")
	}
}
