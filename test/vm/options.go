package vm

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Options describe one run. The zero value of each field has the meaning
// exec.Cmd gives it, where there is one.
type Options struct {
	// Command is argv. Command[0] is resolved like exec.LookPath does, on the
	// host's files (which the guest sees at the same paths), using the PATH
	// of Env and, for a relative path, Dir.
	Command []string
	// Env is the command's environment; nil means os.Environ(). Run adds
	// GuestEnv=1.
	Env []string
	// Dir is the command's working directory; "" means the caller's.
	Dir string
	// Stdout and Stderr receive the command's output; nil discards it.
	Stdout, Stderr io.Writer
	// Log receives progress (building the VM assets) and, when the run
	// fails before the command's exit status is known, the guest's console.
	// nil discards it.
	Log io.Writer
	// Console, when set, receives the guest kernel's console (boot messages,
	// stage 2 of the init) as it is written: for debugging a boot.
	Console io.Writer

	// MemoryMiB is the guest's memory; 0 means DefaultMemoryMiB.
	MemoryMiB int
	// CPUs is the number of vCPUs; 0 means 1 (one TCG thread: the fastest
	// per run on a 2-core machine that runs test packages in parallel).
	CPUs int
	// Timeout bounds the whole run (boot included); 0 means none beyond
	// the context's. On expiry the VM is killed.
	Timeout time.Duration
	// Modules are loaded before the command starts; nil means
	// DefaultModules(). Modules the kernel asks for later (nft expressions,
	// IPVS schedulers, ...) also load on demand.
	Modules []string
	// Forwards make TCP services of the host reachable from the guest.
	Forwards []Forward
	// WritableDirs are host directories the command may write to (shared
	// read-write over 9p at the same path); everything else the command
	// writes stays in the guest.
	WritableDirs []string

	// Assets is the kernel and initramfs to boot; nil means EnsureAssets.
	Assets *Assets
	// QEMU is the qemu-system-x86_64 binary; "" looks it up in PATH.
	QEMU string
	// Accel is QEMU's accelerator; "" means "tcg". "kvm" is much faster
	// where nested virtualisation works (it does not on every machine that
	// has /dev/kvm).
	Accel string
}

// GuestEnv is set to "1" in the command's environment: code can tell it
// runs in the VM (e.g. tests that boot VMs themselves skip there).
const GuestEnv = "NODENET_IN_VM"

// DefaultMemoryMiB is the guest memory when Options.MemoryMiB is 0: room for
// a Go test binary and the tmpfs upper layer of the root overlay.
const DefaultMemoryMiB = 1024

// ForwardAddr is the guest-side address of every Forward: an address of the
// benchmarking range on QEMU's user network, which exists only inside QEMU.
const ForwardAddr = "198.19.254.100"

// Guest network of QEMU's user networking, used when Options.Forwards is set.
const (
	userNet     = "198.19.254.0/24"
	userNetHost = "198.19.254.2"
	guestAddr   = "198.19.254.15/24"
)

// Forward makes the guest's ForwardAddr:GuestPort reach Host, a TCP address
// on the host (e.g. "127.0.0.1:6443"), connecting there once per guest
// connection (through the host's busybox nc, run by QEMU), so any number of
// guest connections, at once or one after another, each get their own.
type Forward struct {
	GuestPort uint16
	Host      string
}

// ParseForward parses "GUESTPORT=HOST:PORT", e.g. "6443=127.0.0.1:6443".
func ParseForward(s string) (Forward, error) {
	port, host, ok := strings.Cut(s, "=")
	if !ok {
		return Forward{}, fmt.Errorf("forward %q: want GUESTPORT=HOST:PORT", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return Forward{}, fmt.Errorf("forward %q: bad guest port %q", s, port)
	}
	f := Forward{GuestPort: uint16(p), Host: host}
	return f, f.validate()
}

func (f Forward) validate() error {
	if f.GuestPort == 0 {
		return fmt.Errorf("forward to %q: no guest port", f.Host)
	}
	host, port, err := net.SplitHostPort(f.Host)
	if err != nil {
		return fmt.Errorf("forward %d: host address %q: %v", f.GuestPort, f.Host, err)
	}
	if net.ParseIP(host) == nil {
		// QEMU resolves names itself; an IP keeps the target unambiguous.
		return fmt.Errorf("forward %d: host address %q: want an IP address", f.GuestPort, f.Host)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("forward %d: host address %q: bad port", f.GuestPort, f.Host)
	}
	return nil
}

// DefaultModules are the modules nodenet's daemons and tests use that the
// Debian kernel builds as modules: IPVS and its schedulers, the link types
// (ipip, dummy, veth, bridge, vxlan), conntrack and NAT, nftables with the
// expressions proxyd and firewalld use, and SCTP. br_netfilter is left out on
// purpose: it makes bridged traffic pass the IP hooks, which the host kernel
// tests do not have either; add it to Modules where wanted.
func DefaultModules() []string {
	return []string{
		"ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_sh",
		"ip_vs_dh", "ip_vs_mh", "ip_vs_sed", "ip_vs_nq",
		"ipip", "dummy", "veth", "bridge", "vxlan",
		"nf_conntrack", "nf_conntrack_netlink", "nf_nat",
		"nf_tables", "nft_ct", "nft_nat", "nft_masq", "nft_redir", "nft_chain_nat",
		"nft_fib_inet", "nft_reject_inet", "nft_limit", "nft_log", "nft_numgen", "nft_hash",
		"sctp",
	}
}

var moduleName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func validateModules(mods []string) error {
	for _, m := range mods {
		if !moduleName.MatchString(m) {
			return fmt.Errorf("bad module name %q", m)
		}
	}
	return nil
}
