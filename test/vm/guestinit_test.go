package vm

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testGuestConfig() guestConfig {
	return guestConfig{
		KernelRelease: "6.1.0-56-amd64",
		ModulesDir:    "/root/.cache/nodenet/vm/6.1.192-2/lib/modules/6.1.0-56-amd64",
		Modules:       []string{"ip_vs", "dummy"},
		Dir:           "/work/main/test/vm",
		Argv:          []string{"/tmp/go-build1/b001/vm.test", "-test.v=true"},
		Env:           []string{"PATH=/usr/bin:/bin", "HOME=/root"},
	}
}

// syntaxCheck runs sh -n on script: the generated scripts must parse.
func syntaxCheck(t *testing.T, script string) {
	t.Helper()
	for _, sh := range []string{"/bin/sh", "/bin/busybox"} {
		if _, err := os.Stat(sh); err != nil {
			continue
		}
		args := []string{"-n"}
		if strings.HasSuffix(sh, "busybox") {
			args = []string{"sh", "-n"}
		}
		cmd := exec.Command(sh, args...)
		cmd.Stdin = strings.NewReader(script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s\nscript:\n%s", sh, args, err, out, script)
		}
	}
}

func TestGuestInitScript(t *testing.T) {
	s := guestInitScript(testGuestConfig())
	syntaxCheck(t, s)
	for _, want := range []string{
		"mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 nodenet.root /host",
		"mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work nodenet.root /newroot",
		"mount --bind '/host/root/.cache/nodenet/vm/6.1.192-2/lib/modules/6.1.0-56-amd64' '/lib/modules/6.1.0-56-amd64'",
		"modprobe -a 'ip_vs' 'dummy'",
		"mount -t tmpfs -o mode=0755 run /newroot/run",
		"[ -d '/newroot/work/main/test/vm' ]",
		"env -i /bin/chroot /newroot /run/nodenet-vm/busybox sh /run/nodenet-vm/command.sh </dev/null >\"$out\" 2>\"$err\"",
		"echo $? >/ctl/exit",
		"poweroff -f",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("stage 2 lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "eth0") {
		t.Errorf("stage 2 configures eth0 without forwards:\n%s", s)
	}
	// The exit status is written only after the command, and nothing
	// after it but the power-off: the runner reads it as "done".
	if i, j := strings.Index(s, "command.sh </dev/null"), strings.Index(s, ">/ctl/exit"); i < 0 || j < i {
		t.Errorf("exit status written before the command runs:\n%s", s)
	}
}

func TestGuestInitScriptNoModules(t *testing.T) {
	c := testGuestConfig()
	c.Modules = nil
	s := guestInitScript(c)
	syntaxCheck(t, s)
	if strings.Contains(s, "modprobe -a") {
		t.Errorf("modprobe without modules:\n%s", s)
	}
}

func TestGuestInitScriptNetworkAndShares(t *testing.T) {
	c := testGuestConfig()
	c.Network = true
	c.Shares = []string{"/tmp/go-build1/b001/gocoverdir", "/tmp/go-build1/b001"}
	s := guestInitScript(c)
	syntaxCheck(t, s)
	if !strings.Contains(s, "ip addr add 198.19.254.15/24 dev eth0") {
		t.Errorf("no eth0 address:\n%s", s)
	}
	// The parent is mounted first, or it would hide the child's mount.
	parent := strings.Index(s, "nodenet.rw1 '/newroot/tmp/go-build1/b001'")
	child := strings.Index(s, "nodenet.rw0 '/newroot/tmp/go-build1/b001/gocoverdir'")
	if parent < 0 || child < 0 || child < parent {
		t.Errorf("shares not mounted parents first (parent at %d, child at %d):\n%s", parent, child, s)
	}
}

// TestCommandScriptQuoting runs the command script with the host's sh and
// env in place of the guest's busybox: arguments, environment and
// directory arrive byte for byte, whatever they contain.
func TestCommandScriptQuoting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's a dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	weird := "a b\t'c' \"d\" $HOME `x` \\ ;|&\nnext line"
	c := guestConfig{
		Dir:  dir,
		Argv: []string{"/bin/sh", "-c", `printf '%s|' "$PWD" "$1" "$WEIRD" "$EMPTY" "$HOME"`, "arg0", weird},
		Env:  []string{"WEIRD=" + weird, "EMPTY=", "HOME=/nowhere"},
	}
	script := commandScript(c)
	syntaxCheck(t, script)
	host := strings.Replace(script, guestToolDir+"/busybox env -i", "/usr/bin/env -i", 1)
	if host == script {
		t.Fatalf("command script does not exec busybox env -i:\n%s", script)
	}
	out, err := exec.Command("/bin/sh", "-c", host).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s\nscript:\n%s", err, out, host)
	}
	want := strings.Join([]string{dir, weird, weird, "", "/nowhere", ""}, "|")
	if string(out) != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
}

func TestCommandScriptMissingDir(t *testing.T) {
	c := guestConfig{Dir: "/nonexistent/dir", Argv: []string{"/bin/true"}}
	host := strings.Replace(commandScript(c), guestToolDir+"/busybox env -i", "/usr/bin/env -i", 1)
	err := exec.Command("/bin/sh", "-c", host).Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 126 {
		t.Errorf("exit %v, want 126 for a missing working directory", err)
	}
}

func TestShellQuote(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", "'", "''", "a\nb", "$(echo no)", "\\'"} {
		out, err := exec.Command("/bin/sh", "-c", "printf '%s' "+shellQuote(s)).Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != s {
			t.Errorf("shellQuote(%q) reads back as %q", s, out)
		}
	}
}

func TestValidEnv(t *testing.T) {
	got := validEnv([]string{"A=1", "NOEQUALS", "=x", "B=", "C=a=b"})
	want := []string{"A=1", "B=", "C=a=b"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("validEnv = %q, want %q", got, want)
	}
}

func TestCleanShares(t *testing.T) {
	got, err := cleanShares([]string{"/a/b/", "/a/b", "/c/../d"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "/a/b,/d" {
		t.Errorf("cleanShares = %q", got)
	}
	for _, bad := range []string{"relative", "/", "/.."} {
		if _, err := cleanShares([]string{bad}); err == nil {
			t.Errorf("cleanShares(%q) accepted", bad)
		}
	}
}

func TestGuestInitScriptWatchdog(t *testing.T) {
	c := testGuestConfig()
	c.Watchdog = watchdogFor(8 * time.Minute)
	s := guestInitScript(c)
	syntaxCheck(t, s)
	for _, want := range []string{
		"\tsleep 460\n",
		`[ "$1" = D ] || { [ "$2" != 2 ] && [ "${l%% *}" != 2 ]; } || continue`,
		`echo "nodenet-vm:   ${l%%) *}) $1"`,
		"echo 8 >/proc/sys/kernel/printk",
		"echo w >/proc/sysrq-trigger",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("stage 2 lacks %q:\n%s", want, s)
		}
	}
	// In the background, started before the command.
	if i, j := strings.Index(s, ") &"), strings.Index(s, "command.sh </dev/null"); i < 0 || j < i {
		t.Errorf("the watchdog does not run in the background before the command:\n%s", s)
	}
	if s := guestInitScript(testGuestConfig()); strings.Contains(s, "sysrq") {
		t.Errorf("a watchdog without Watchdog:\n%s", s)
	}
	for _, tc := range []struct{ timeout, want time.Duration }{
		{0, 0}, {30 * time.Second, 0}, {time.Minute, 40 * time.Second}, {8 * time.Minute, 460 * time.Second},
	} {
		if got := watchdogFor(tc.timeout); got != tc.want {
			t.Errorf("watchdogFor(%v) = %v, want %v", tc.timeout, got, tc.want)
		}
	}
}
