package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/nodenet/nodenet/test/vm"
)

const usage = `usage: vmexec [-memory MiB] [-cpus N] [-timeout D] [-forward GUESTPORT=HOST:PORT]...
              [-modules a,b] [-writable DIR]... [-accel tcg|kvm] [-v] command [args...]
`

// config is vmexec's own settings and the command to run.
type config struct {
	memoryMiB int
	cpus      int
	timeout   time.Duration
	forwards  []vm.Forward
	modules   []string
	writable  []string
	accel     string
	verbose   bool
	command   []string
}

// parseArgs reads the flags before the command; the environment gives the
// defaults, so `go test -exec vmexec` can be tuned without quoting flags.
// Parsing stops at the first argument that is not a flag: the command and
// its own flags (the test binary's -test.*) are passed on untouched.
func parseArgs(args []string, getenv func(string) string) (config, error) {
	var c config
	var err error
	if c.memoryMiB, err = envInt(getenv, "NODENET_VM_MEMORY"); err != nil {
		return c, err
	}
	if c.cpus, err = envInt(getenv, "NODENET_VM_CPUS"); err != nil {
		return c, err
	}
	if v := getenv("NODENET_VM_TIMEOUT"); v != "" {
		if c.timeout, err = time.ParseDuration(v); err != nil {
			return c, fmt.Errorf("NODENET_VM_TIMEOUT: %v", err)
		}
	}
	for _, f := range splitList(getenv("NODENET_VM_FORWARDS")) {
		fw, err := vm.ParseForward(f)
		if err != nil {
			return c, fmt.Errorf("NODENET_VM_FORWARDS: %v", err)
		}
		c.forwards = append(c.forwards, fw)
	}
	c.modules = splitList(getenv("NODENET_VM_MODULES"))
	c.accel = getenv("NODENET_VM_ACCEL")
	c.verbose = getenv("NODENET_VM_VERBOSE") == "1"

	fs := flag.NewFlagSet("vmexec", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&c.memoryMiB, "memory", c.memoryMiB, "guest memory in MiB")
	fs.IntVar(&c.cpus, "cpus", c.cpus, "vCPUs")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "kill the VM after this long")
	fs.Func("forward", "GUESTPORT=HOST:PORT", func(s string) error {
		fw, err := vm.ParseForward(s)
		if err == nil {
			c.forwards = append(c.forwards, fw)
		}
		return err
	})
	fs.Func("modules", "modules to load besides the defaults", func(s string) error {
		c.modules = append(c.modules, splitList(s)...)
		return nil
	})
	fs.Func("writable", "host dir the command may write", func(s string) error {
		c.writable = append(c.writable, s)
		return nil
	})
	fs.StringVar(&c.accel, "accel", c.accel, "QEMU accelerator")
	fs.BoolVar(&c.verbose, "v", c.verbose, "copy the guest console to stderr")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	c.command = fs.Args()
	if len(c.command) == 0 {
		return c, errors.New("no command")
	}
	return c, nil
}

func envInt(getenv func(string) string, name string) (int, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
