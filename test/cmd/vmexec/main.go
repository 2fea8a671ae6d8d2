// Command vmexec runs a command inside a small VM that boots Debian's stock
// kernel (package github.com/nodenet/nodenet/test/vm) and exits with the
// command's exit code. It is made for `go test -exec`, so tests that need
// kernel features the host lacks (IPVS, IPIP, dummy links, SCTP) run
// against a real kernel that has them:
//
//	go build -o _output/bin/vmexec ./test/cmd/vmexec
//	go test -tags vm -exec "$PWD/_output/bin/vmexec" ./test/vm/...
//
// go test runs `vmexec <test binary> <test flags>` in the package's source
// directory; vmexec runs exactly that argv in the guest, in the same
// directory, with the current environment (less the variables that name
// host-only things: ssh and desktop sockets, systemd's, vmexec's own), as
// root. The guest sees the host's files read-only at the same paths, with a
// private writable layer; the directories of the files go test asks the
// binary to write (-test.testlogfile, -test.coverprofile, -test.gocoverdir,
// profiles, -test.outputdir) are shared read-write, so test caching,
// coverage and profiles work as without -exec. stdin is /dev/null.
//
// Flags (before the command; each also read from the environment, which is
// handy with `go test -exec`):
//
//	-memory MiB        guest memory (NODENET_VM_MEMORY, default 1024)
//	-cpus N            vCPUs (NODENET_VM_CPUS, default 1)
//	-timeout D         kill the VM after D, boot included (NODENET_VM_TIMEOUT, default none)
//	-forward P=H:HP    guest ForwardAddr:P reaches host H:HP, e.g.
//	                   6443=127.0.0.1:6443 (repeatable; NODENET_VM_FORWARDS, comma-separated)
//	-modules a,b       modules to load besides the defaults (NODENET_VM_MODULES)
//	-writable DIR      another host dir the command may write (repeatable)
//	-accel A           QEMU accelerator, tcg or kvm (NODENET_VM_ACCEL, default tcg)
//	-v                 copy the guest's console to stderr (NODENET_VM_VERBOSE=1)
//
// With flags: go test -exec "_output/bin/vmexec -forward 6443=127.0.0.1:6443" ...
//
// The VM assets (kernel, modules, initramfs) are built once by
// hack/vm-assets.sh into ~/.cache/nodenet/vm; vmexec runs the script when
// they are missing. vmexec exits 125 when the VM itself fails (no assets,
// boot failure, timeout); the command's own exit code otherwise. SIGINT,
// SIGTERM and SIGQUIT kill the VM.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/nodenet/nodenet/test/vm"
)

// exitVMFailed is vmexec's exit code when the VM, not the command, failed.
const exitVMFailed = 125

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseArgs(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "vmexec: %v\n%s", err, usage)
		return 2
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "vmexec: %v\n", err)
		return exitVMFailed
	}
	env := guestEnv(os.Environ())
	writable := append(outputDirs(cfg.command[1:], wd, env), cfg.writable...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	defer stop()
	opts := vm.Options{
		Command:      cfg.command,
		Env:          env,
		Dir:          wd,
		Stdout:       stdout,
		Stderr:       stderr,
		Log:          stderr,
		MemoryMiB:    cfg.memoryMiB,
		CPUs:         cfg.cpus,
		Timeout:      cfg.timeout,
		Forwards:     cfg.forwards,
		WritableDirs: writable,
		Accel:        cfg.accel,
	}
	if len(cfg.modules) > 0 {
		opts.Modules = append(vm.DefaultModules(), cfg.modules...)
	}
	if cfg.verbose {
		opts.Console = stderr
	}
	code, err := vm.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "vmexec: %v\n", err)
		return exitVMFailed
	}
	return code
}
