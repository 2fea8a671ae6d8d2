//go:build vm

package app

import (
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"

	isysctl "github.com/nodenet/nodenet/internal/sysctl"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/proxyd/internal/controller"
)

// `proxyd prepare` (the chart's privileged init container) writes every
// kernel setting run relies on, in the network namespace it runs in (a
// fresh one here, where all of them start unset), IPVS's included; run
// then finds nothing to write.
func TestPrepareWritesTheSettings(t *testing.T) {
	ns := netnstest.New(t)
	cfg := controller.DefaultConfig()
	cfg.StrictARP = true
	read := func() map[string]string {
		got := map[string]string{}
		err := netnstest.InNetns(ns, func() error {
			for _, s := range kernelSettings(cfg) {
				b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(s.Name, ".", "/"))
				if err != nil {
					return err
				}
				got[s.Name] = strings.TrimSpace(string(b))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	before := read()
	if err := netnstest.InNetns(ns, func() error { return prepare(zap.NewNop(), cfg) }); err != nil {
		t.Fatal(err)
	}
	after := read()
	changed := 0
	for _, s := range kernelSettings(cfg) {
		if after[s.Name] != s.Value {
			t.Errorf("%s = %s after prepare, want %s", s.Name, after[s.Name], s.Value)
		}
		if before[s.Name] != s.Value {
			changed++
		}
	}
	if changed == 0 {
		t.Fatalf("every setting was already as wanted in a fresh namespace (%v): the test proves nothing", before)
	}
	var n int
	if err := netnstest.InNetns(ns, func() error {
		var err error
		n, err = (isysctl.Sysctl{}).Apply(kernelSettings(cfg))
		return err
	}); err != nil || n != 0 {
		t.Errorf("run's settings after prepare: %d written, %v; want none", n, err)
	}
}
