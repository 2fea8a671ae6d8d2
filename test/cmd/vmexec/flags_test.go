package main

import (
	"slices"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/vm"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseArgsGoTestExec(t *testing.T) {
	// What go test runs: vmexec <test binary> <test flags>. The test flags
	// are the command's, not vmexec's.
	args := []string{"/tmp/go-build1/b001/ipvstest.test", "-test.paniconexit0", "-test.timeout=10m0s", "-test.v=true"}
	c, err := parseArgs(args, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.command, args) {
		t.Errorf("command %q, want %q", c.command, args)
	}
	if c.memoryMiB != 0 || c.cpus != 0 || c.timeout != 0 || len(c.forwards) != 0 || c.verbose {
		t.Errorf("defaults changed: %+v", c)
	}
}

func TestParseArgsFlagsAndEnv(t *testing.T) {
	e := env(map[string]string{
		"NODENET_VM_MEMORY":   "2048",
		"NODENET_VM_TIMEOUT":  "5m",
		"NODENET_VM_FORWARDS": "6443=127.0.0.1:6443, 80=127.0.0.1:8080",
		"NODENET_VM_MODULES":  "br_netfilter",
		"NODENET_VM_VERBOSE":  "1",
	})
	c, err := parseArgs([]string{"-memory", "512", "-cpus=2", "-forward", "22=127.0.0.1:2222", "-modules", "tun,tap",
		"-writable", "/out", "-accel", "kvm", "--", "-weird-command", "-x"}, e)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		memoryMiB: 512, // the flag wins over the environment
		cpus:      2,
		timeout:   5 * time.Minute,
		forwards: []vm.Forward{
			{GuestPort: 6443, Host: "127.0.0.1:6443"}, {GuestPort: 80, Host: "127.0.0.1:8080"},
			{GuestPort: 22, Host: "127.0.0.1:2222"},
		},
		modules:  []string{"br_netfilter", "tun", "tap"},
		writable: []string{"/out"},
		accel:    "kvm",
		verbose:  true,
		command:  []string{"-weird-command", "-x"},
	}
	if c.memoryMiB != want.memoryMiB || c.cpus != want.cpus || c.timeout != want.timeout || c.accel != want.accel ||
		c.verbose != want.verbose || !slices.Equal(c.forwards, want.forwards) || !slices.Equal(c.modules, want.modules) ||
		!slices.Equal(c.writable, want.writable) || !slices.Equal(c.command, want.command) {
		t.Errorf("parseArgs = %+v\nwant        %+v", c, want)
	}
}

func TestParseArgsErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		env  map[string]string
	}{
		"no command":    {args: nil},
		"flags only":    {args: []string{"-memory", "512"}},
		"bad forward":   {args: []string{"-forward", "6443", "true"}},
		"unknown flag":  {args: []string{"-nope", "true"}},
		"bad env int":   {args: []string{"true"}, env: map[string]string{"NODENET_VM_MEMORY": "lots"}},
		"bad env time":  {args: []string{"true"}, env: map[string]string{"NODENET_VM_TIMEOUT": "soon"}},
		"bad env fwd":   {args: []string{"true"}, env: map[string]string{"NODENET_VM_FORWARDS": "x"}},
		"negative cpus": {args: []string{"true"}, env: map[string]string{"NODENET_VM_CPUS": "-1"}},
	} {
		if c, err := parseArgs(tc.args, env(tc.env)); err == nil {
			t.Errorf("%s: parseArgs accepted: %+v", name, c)
		}
	}
}
