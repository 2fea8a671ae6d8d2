package vm

import (
	"slices"
	"strings"
	"testing"
)

func testQEMUConfig() qemuConfig {
	return qemuConfig{
		Assets:    Assets{Kernel: "/cache/vm/1/vmlinux", Initramfs: "/cache/vm/1/initramfs.cpio.gz"},
		RunDir:    "/tmp/nodenet-vm-1",
		MemoryMiB: 1024,
		CPUs:      1,
		ConsoleFD: 3, StdoutFD: 4, StderrFD: 5,
	}
}

// option returns the values following each occurrence of flag.
func option(args []string, flag string) []string {
	var vals []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			vals = append(vals, args[i+1])
		}
	}
	return vals
}

func TestQEMUArgsBootAndShares(t *testing.T) {
	args := qemuArgs(testQEMUConfig())
	for flag, want := range map[string]string{
		"-kernel": "/cache/vm/1/vmlinux",
		"-initrd": "/cache/vm/1/initramfs.cpio.gz",
		"-append": kernelCmdline(),
		"-accel":  "tcg",
		"-cpu":    "max",
		"-smp":    "1",
		"-m":      "1024",
		"-serial": "chardev:console",
	} {
		if got := option(args, flag); len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want [%q]", flag, got, want)
		}
	}
	for _, f := range []string{"-nodefaults", "-no-user-config", "-no-reboot"} {
		if !slices.Contains(args, f) {
			t.Errorf("missing %s", f)
		}
	}
	fsdevs := option(args, "-fsdev")
	if len(fsdevs) != 2 {
		t.Fatalf("fsdevs %q, want the root and the control share", fsdevs)
	}
	if !strings.Contains(fsdevs[0], "path=/,") || !strings.Contains(fsdevs[0], "readonly=on") {
		t.Errorf("root share %q is not the host root, read-only", fsdevs[0])
	}
	if !strings.Contains(fsdevs[1], "path=/tmp/nodenet-vm-1,") || strings.Contains(fsdevs[1], "readonly") {
		t.Errorf("control share %q is not the writable run dir", fsdevs[1])
	}
	devices := strings.Join(option(args, "-device"), " ")
	for _, want := range []string{"mount_tag=" + tagRoot, "mount_tag=" + tagControl, "name=" + portStdout, "name=" + portStderr} {
		if !strings.Contains(devices, want) {
			t.Errorf("devices %q lack %q", devices, want)
		}
	}
	chardevs := strings.Join(option(args, "-chardev"), " ")
	for _, want := range []string{"id=console,path=/dev/fd/3", "id=stdout,path=/dev/fd/4", "id=stderr,path=/dev/fd/5"} {
		if !strings.Contains(chardevs, want) {
			t.Errorf("chardevs %q lack %q", chardevs, want)
		}
	}
	if n := option(args, "-netdev"); len(n) != 0 {
		t.Errorf("netdev %q without forwards; the guest must have no network then", n)
	}
}

func TestQEMUArgsWritableDirs(t *testing.T) {
	c := testQEMUConfig()
	c.Shares = []string{"/work/out", "/tmp/a,b"}
	args := qemuArgs(c)
	fsdevs := option(args, "-fsdev")
	if len(fsdevs) != 4 {
		t.Fatalf("fsdevs %q, want root, control and two shares", fsdevs)
	}
	if want := "local,id=rw0,path=/work/out,security_model=none"; fsdevs[2] != want {
		t.Errorf("share 0 = %q, want %q", fsdevs[2], want)
	}
	// A comma in a path is doubled, or QEMU would read an option after it.
	if want := "local,id=rw1,path=/tmp/a,,b,security_model=none"; fsdevs[3] != want {
		t.Errorf("share 1 = %q, want %q", fsdevs[3], want)
	}
	devices := strings.Join(option(args, "-device"), " ")
	for _, want := range []string{"fsdev=rw0,mount_tag=nodenet.rw0", "fsdev=rw1,mount_tag=nodenet.rw1"} {
		if !strings.Contains(devices, want) {
			t.Errorf("devices %q lack %q", devices, want)
		}
	}
}

func TestQEMUArgsForwards(t *testing.T) {
	c := testQEMUConfig()
	c.Forwards = []Forward{{GuestPort: 6443, Host: "127.0.0.1:6443"}, {GuestPort: 80, Host: "127.0.0.1:8080"}}
	c.Connector = "/usr/bin/busybox"
	args := qemuArgs(c)
	want := "user,id=net0,restrict=on,ipv6=off,net=198.19.254.0/24,host=198.19.254.2," +
		`guestfwd=tcp:198.19.254.100:6443-cmd:/usr/bin/busybox sh -c "exec /usr/bin/busybox nc 127.0.0.1 6443 2>/dev/null",` +
		`guestfwd=tcp:198.19.254.100:80-cmd:/usr/bin/busybox sh -c "exec /usr/bin/busybox nc 127.0.0.1 8080 2>/dev/null"`
	if got := option(args, "-netdev"); len(got) != 1 || got[0] != want {
		t.Errorf("netdev = %q, want [%q]", got, want)
	}
	if !slices.Contains(option(args, "-device"), "virtio-net-pci,netdev=net0,romfile=") {
		t.Errorf("no virtio-net device for the forwards: %q", option(args, "-device"))
	}
}

func TestQEMUArgsAccel(t *testing.T) {
	c := testQEMUConfig()
	c.Accel = "kvm"
	c.CPUs = 2
	args := qemuArgs(c)
	if got := option(args, "-accel"); !slices.Equal(got, []string{"kvm"}) {
		t.Errorf("-accel %q", got)
	}
	// TCG's "max" model lists features KVM cannot give; KVM takes the host's.
	if got := option(args, "-cpu"); !slices.Equal(got, []string{"host"}) {
		t.Errorf("-cpu %q", got)
	}
	if got := option(args, "-smp"); !slices.Equal(got, []string{"2"}) {
		t.Errorf("-smp %q", got)
	}
}

func TestKernelCmdline(t *testing.T) {
	cl := kernelCmdline()
	for _, want := range []string{"console=ttyS0", "panic=-1", "quiet"} {
		if !slices.Contains(strings.Fields(cl), want) {
			t.Errorf("kernel command line %q lacks %q", cl, want)
		}
	}
}
