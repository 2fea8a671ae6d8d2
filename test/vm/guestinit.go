package vm

import (
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// Names shared by the QEMU command line and the guest scripts. The control
// share's tag and /ctl/init.sh are also the stage-1 init's contract
// (hack/vm-assets.sh).
const (
	tagControl = "nodenet.ctl"
	tagRoot    = "nodenet.root"
	tagShare   = "nodenet.rw" // + index, one per writable dir
	portStdout = "nodenet.stdout"
	portStderr = "nodenet.stderr"

	// Files in the run directory (the control share).
	ctlInit    = "init.sh"    // stage 2, run by the initramfs's busybox
	ctlCommand = "command.sh" // runs the command inside the chroot
	ctlExit    = "exit"       // the command's exit status, written last
	ctlError   = "error"      // why stage 2 gave up, when it did

	// Where stage 2 puts busybox and command.sh inside the chroot (on the
	// guest's own tmpfs /run).
	guestToolDir = "/run/nodenet-vm"
)

// guestConfig is what the guest needs to know about one run.
type guestConfig struct {
	KernelRelease string
	// ModulesDir is the host path of the asset's lib/modules/<release>,
	// which the guest reaches through the shared host root.
	ModulesDir string
	Modules    []string
	// Dir, Argv and Env describe the command; Argv[0] is an absolute path.
	Dir  string
	Argv []string
	Env  []string
	// Shares are the writable host directories, in QEMU's order.
	Shares []string
	// Network configures eth0 for Forwards.
	Network bool
	// Watchdog, when not 0, is how long after its start a command that
	// still runs has the guest's tasks written to the console (see
	// watchdogLead).
	Watchdog time.Duration
}

// watchdogLead is how long before the run's timeout the watchdog writes
// the guest's tasks to the console: the runner kills the VM at the
// timeout and reports the console's tail. A command (a Go test) that has
// outlived its own timeout by then cannot exit: some task is stuck in the
// kernel, and the blocked tasks' kernel stacks say where.
const watchdogLead = 20 * time.Second

// watchdogFor is the watchdog of a run bounded by timeout: none for a run
// too short for it to say anything the timeout does not.
func watchdogFor(timeout time.Duration) time.Duration {
	if timeout < 3*watchdogLead {
		return 0
	}
	return timeout - watchdogLead
}

// guestInitScript is stage 2 of the guest's init: it builds the root the
// command sees, loads modules, runs the command and reports its status.
// busybox sh runs it as PID 1 from the initramfs, with /proc, /sys, /dev and
// the control share (/ctl) mounted by stage 1.
func guestInitScript(c guestConfig) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	q := shellQuote
	w("# Stage 2 of the nodenet VM's init, written by test/vm for one run.")
	w("set -u")
	w("fail() {")
	w("\techo \"nodenet-vm: $*\"")
	w("\techo \"$*\" >/ctl/%s", ctlError)
	w("\tpoweroff -f")
	w("\texit 1")
	w("}")

	w("\n# The command's root: the host's, read-only, under a tmpfs overlay.")
	w("mkdir -p /host /rw /newroot")
	// cache=loose: the host root does not change under a test, and the
	// guest's page cache makes exec and repeated reads fast under TCG.
	w("mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 %s /host || fail 'cannot mount the host root (9p %s)'", tagRoot, tagRoot)
	w("mount -t tmpfs -o mode=0755 nodenet.rw /rw || fail 'cannot mount the overlay tmpfs'")
	w("mkdir -p /rw/upper /rw/work")
	w("mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work nodenet.root /newroot || fail 'cannot mount the root overlay'")

	w("\n# Modules: the asset's whole tree over the initramfs's few, for")
	w("# the list below and for the kernel's on-demand loads (busybox modprobe).")
	mods := "/lib/modules/" + c.KernelRelease
	w("mount --bind %s %s || fail %s", q("/host"+c.ModulesDir), q(mods), q("cannot bind the module tree "+c.ModulesDir))
	if len(c.Modules) > 0 {
		// One modprobe for all: busybox parses modules.dep (500 kB) once per
		// call, which costs ~30 ms a time under TCG. On failure, one at a
		// time names the culprit.
		mods := shellQuoteAll(c.Modules)
		w("if ! modprobe -a %s; then", mods)
		w("\tfor m in %s; do modprobe \"$m\" || fail \"cannot load module $m\"; done", mods)
		w("fi")
	}

	w("\n# Kernel filesystems and a fresh /run for the command.")
	w("mount -t proc proc /newroot/proc || fail 'cannot mount /proc'")
	w("mount -t sysfs sysfs /newroot/sys || fail 'cannot mount /sys'")
	w("mount -t devtmpfs devtmpfs /newroot/dev || fail 'cannot mount /dev'")
	w("mkdir -p /newroot/dev/pts /newroot/dev/shm")
	w("mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts")
	w("mount -t tmpfs -o mode=1777 shm /newroot/dev/shm")
	w("mount -t tmpfs -o mode=0755 run /newroot/run || fail 'cannot mount /run'")
	w("mkdir -p %s && mount --bind %s %s", q("/newroot"+mods), q(mods), q("/newroot"+mods))

	if len(c.Shares) > 0 {
		w("\n# Writable host directories, parents first.")
		idx := make([]int, len(c.Shares))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return len(c.Shares[idx[a]]) < len(c.Shares[idx[b]]) })
		for _, i := range idx {
			p := q("/newroot" + c.Shares[i])
			w("mkdir -p %s && mount -t 9p -o trans=virtio,version=9p2000.L,cache=mmap,msize=262144 %s%d %s || fail %s",
				p, tagShare, i, p, q("cannot mount writable dir "+c.Shares[i]))
		}
	}

	w("\nip link set lo up")
	if c.Network {
		w("# QEMU's user network, for the forwards to the host.")
		w("ip link set eth0 up && ip addr add %s dev eth0 || fail 'cannot configure eth0'", guestAddr)
	}

	w("\n# The serial ports appear once QEMU has announced them: poll.")
	w("port() {")
	w("\tfor p in /sys/class/virtio-ports/*; do")
	w("\t\t[ \"$(cat \"$p/name\" 2>/dev/null)\" = \"$1\" ] && [ -c \"/dev/${p##*/}\" ] && echo \"/dev/${p##*/}\" && return 0")
	w("\tdone")
	w("\treturn 1")
	w("}")
	w("i=0")
	w("until out=$(port %s) && err=$(port %s); do", portStdout, portStderr)
	w("\ti=$((i + 1))")
	w("\t[ $i -lt 200 ] || fail 'no virtio serial ports %s and %s'", portStdout, portStderr)
	w("\tsleep 0.05")
	w("done")

	w("\n# The command, chrooted, with only its own environment.")
	w("mkdir -p /newroot%s", guestToolDir)
	w("cp /bin/busybox /ctl/%s /newroot%s/ || fail 'cannot copy busybox into the guest root'", ctlCommand, guestToolDir)
	w("[ -d %s ] || fail %s", q("/newroot"+c.Dir), q("working directory "+c.Dir+" does not exist in the guest"))
	if c.Watchdog > 0 {
		secs := int(c.Watchdog.Seconds())
		w("\n# The watchdog: the command still running near the run's timeout")
		w("# is stuck; every task's state, then the blocked ones' kernel stacks")
		w("# (sysrq w, at the console's full log level: quiet hides it).")
		w("(")
		w("\tsleep %d", secs)
		w("\techo \"nodenet-vm: the command still runs %ds after it started; the guest's processes and blocked tasks (pid (name) state):\"", secs)
		// Kernel threads (kthreadd, pid 2, and its children) only when
		// blocked (D): the rest are noise.
		w("\tfor s in /proc/[0-9]*/stat; do")
		w("\t\tread -r l <\"$s\" 2>/dev/null || continue")
		w("\t\tset -- ${l##*) }")
		w("\t\t[ \"$1\" = D ] || { [ \"$2\" != 2 ] && [ \"${l%%%% *}\" != 2 ]; } || continue")
		w("\t\techo \"nodenet-vm:   ${l%%%%) *}) $1\"")
		w("\tdone")
		w("\techo 8 >/proc/sys/kernel/printk")
		w("\techo w >/proc/sysrq-trigger")
		w(") &")
	}
	w("env -i /bin/chroot /newroot %s/busybox sh %s/%s </dev/null >\"$out\" 2>\"$err\"", guestToolDir, guestToolDir, ctlCommand)
	w("echo $? >/ctl/%s", ctlExit)
	w("poweroff -f")
	return b.String()
}

// commandScript runs inside the chroot (busybox sh, empty environment): it
// enters the working directory and execs the command with its environment.
// The command is exec'd by absolute path, since busybox would run its own
// applet for a bare name like "ls".
func commandScript(c guestConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cd %s || exit 126\n", shellQuote(c.Dir))
	fmt.Fprintf(&b, "exec %s/busybox env -i", guestToolDir)
	for _, kv := range c.Env {
		fmt.Fprintf(&b, " \\\n\t%s", shellQuote(kv))
	}
	fmt.Fprintf(&b, " \\\n\t%s\n", shellQuoteAll(c.Argv))
	return b.String()
}

// validEnv drops entries env -i would misread: without "=", or with an
// empty name.
func validEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); ok && k != "" {
			out = append(out, kv)
		}
	}
	return out
}

// cleanShares makes the writable dirs absolute and clean, without
// duplicates, in the order given.
func cleanShares(dirs []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		if !path.IsAbs(d) {
			return nil, fmt.Errorf("writable dir %q is not absolute", d)
		}
		d = path.Clean(d)
		if d == "/" {
			return nil, fmt.Errorf("writable dir / would share the whole host root read-write")
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out, nil
}
