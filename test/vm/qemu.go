package vm

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// qemuConfig is what the QEMU command line is made of.
type qemuConfig struct {
	Assets    Assets
	RunDir    string   // the control share
	Shares    []string // writable host dirs, tagShare+index
	Forwards  []Forward
	MemoryMiB int
	CPUs      int
	Accel     string
	// Connector is the host's busybox, whose nc QEMU runs once per guest
	// connection of a Forward.
	Connector string
	// File descriptors QEMU inherits (exec.Cmd.ExtraFiles start at 3): the
	// kernel console and the command's stdout and stderr, write ends of
	// pipes the runner reads.
	ConsoleFD, StdoutFD, StderrFD int
}

// kernelCmdline: the console on the first serial port (read by the runner
// for diagnostics), quiet because every byte through the emulated UART
// costs under TCG, and a panic (e.g. the init dying) reboots, which
// -no-reboot turns into QEMU exiting.
func kernelCmdline() string {
	return "console=ttyS0 panic=-1 quiet"
}

// qemuArgs builds QEMU's command line (without the binary).
func qemuArgs(c qemuConfig) []string {
	fd := func(n int) string { return "/dev/fd/" + strconv.Itoa(n) }
	accel, cpu := "tcg", "max"
	if c.Accel != "" && c.Accel != "tcg" {
		accel, cpu = c.Accel, "host"
	}
	args := []string{
		"-name", "nodenet-vm",
		"-machine", "q35",
		"-accel", accel,
		"-cpu", cpu,
		"-smp", strconv.Itoa(c.CPUs),
		"-m", strconv.Itoa(c.MemoryMiB),
		// Nothing but what is listed here: no default NIC, VGA, monitor,
		// parallel port or user config file.
		"-nodefaults", "-no-user-config", "-display", "none",
		"-no-reboot",
		"-kernel", c.Assets.Kernel,
		"-initrd", c.Assets.Initramfs,
		"-append", kernelCmdline(),
		"-chardev", "file,id=console,path=" + fd(c.ConsoleFD),
		"-serial", "chardev:console",
		// The host root, read-only. multidevs=remap keeps inode numbers
		// unique across the host's mounts (/, /proc, /work, ...).
		"-fsdev", "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap",
		"-device", "virtio-9p-pci,fsdev=root,mount_tag=" + tagRoot,
		// The control share: scripts in, exit status out.
		"-fsdev", "local,id=ctl,path=" + qemuOptValue(c.RunDir) + ",security_model=none",
		"-device", "virtio-9p-pci,fsdev=ctl,mount_tag=" + tagControl,
	}
	for i, dir := range c.Shares {
		id := fmt.Sprintf("rw%d", i)
		args = append(args,
			"-fsdev", "local,id="+id+",path="+qemuOptValue(dir)+",security_model=none",
			"-device", fmt.Sprintf("virtio-9p-pci,fsdev=%s,mount_tag=%s%d", id, tagShare, i))
	}
	args = append(args,
		"-device", "virtio-serial-pci,id=ser0",
		"-chardev", "file,id=stdout,path="+fd(c.StdoutFD),
		"-device", "virtserialport,bus=ser0.0,chardev=stdout,name="+portStdout,
		"-chardev", "file,id=stderr,path="+fd(c.StderrFD),
		"-device", "virtserialport,bus=ser0.0,chardev=stderr,name="+portStderr,
	)
	if len(c.Forwards) > 0 {
		args = append(args,
			"-netdev", userNetdev(c.Forwards, c.Connector),
			// romfile= : no PXE option ROM to load, nothing boots from it.
			"-device", "virtio-net-pci,netdev=net0,romfile=")
	}
	return args
}

// userNetdev is QEMU's user network with restrict=on (the guest reaches
// nothing outside QEMU) on a benchmarking-range subnet, with one guestfwd
// per Forward: each guest connection to ForwardAddr:GuestPort makes QEMU
// run `busybox nc HOST PORT` (connector is busybox), which connects to
// Host, with the guest connection as its stdin and stdout. QEMU gives the
// command the guest connection as stderr too: nc's is discarded, so a host
// that refuses shows the guest a connection closed, not an error text.
//
// Not guestfwd's other form, "-tcp:HOST:PORT": that is a chardev, which
// connects to Host once when QEMU starts and carries every guest
// connection over that one host connection, interleaved; a second
// connection (a reconnect, or two clients) garbles the first.
func userNetdev(fwds []Forward, connector string) string {
	opts := []string{"user", "id=net0", "restrict=on", "ipv6=off",
		"net=" + userNet, "host=" + userNetHost}
	for _, f := range fwds {
		host, port, _ := net.SplitHostPort(f.Host) // validated: IP and port
		// Unquoted words: Run checked that connector is a plain path.
		opts = append(opts, fmt.Sprintf(`guestfwd=tcp:%s:%d-cmd:%s sh -c "exec %s nc %s %s 2>/dev/null"`,
			ForwardAddr, f.GuestPort, connector, connector, host, port))
	}
	return strings.Join(opts, ",")
}

// qemuOptValue escapes a value inside QEMU's comma-separated options, where
// "," is written ",,".
func qemuOptValue(s string) string {
	return strings.ReplaceAll(s, ",", ",,")
}
