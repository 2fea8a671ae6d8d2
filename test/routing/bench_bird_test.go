//go:build kernel

package routing

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/nodenet/nodenet/internal/testutil"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/test/netns"
)

// BIRD, the announcer and the receiver of BenchmarkConvergence5k.

type birdNeighbor struct {
	Name    string
	Address netip.Addr
	ASN     uint32
}

// announcerConfig fills testdata/bird-announcer.conf.tmpl.
type announcerConfig struct {
	RouterID, Local netip.Addr
	LocalAS         uint32
	Routes          []string
	Neighbors       []birdNeighbor
}

// receiverConfig fills testdata/bird-receiver.conf.tmpl.
type receiverConfig struct {
	RouterID, Local, Neighbor netip.Addr
	LocalAS, NeighborAS       uint32
}

// birdProc is one BIRD process of the benchmark.
type birdProc struct {
	name string
	sock string
	done chan struct{}
	out  *testutil.SyncBuffer
}

// requireBIRD skips unless BIRD 2 is installed.
func requireBIRD(tb testing.TB) {
	tb.Helper()
	for _, p := range []string{"bird", "birdc"} {
		if _, err := exec.LookPath(p); err != nil {
			tb.Skipf("%s not found: install Debian's bird2 (hack/install-deps.sh)", p)
		}
	}
}

// startBIRD runs BIRD in the foreground in ns with the template tmpl of
// testdata filled with data, its config and control socket in a fresh
// directory, and returns once the control socket answers. It is killed
// when tb ends (before the namespaces go: it started after them).
func startBIRD(tb testing.TB, ns *netns.NetNS, name, tmpl string, data any) *birdProc {
	tb.Helper()
	t, err := template.ParseFiles(filepath.Join("testdata", tmpl))
	if err != nil {
		tb.Fatal(err)
	}
	var conf bytes.Buffer
	if err := t.Execute(&conf, data); err != nil {
		tb.Fatal(err)
	}
	dir := testutil.SocketDir(tb) // the control socket's path must be short
	confPath := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	p := &birdProc{name: name, sock: filepath.Join(dir, "bird.ctl"), done: make(chan struct{}), out: &testutil.SyncBuffer{}}
	cmd := exec.Command("bird", "-f", "-c", confPath, "-s", p.sock)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := ns.Start(cmd); err != nil {
		tb.Fatalf("start BIRD %s: %v", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if tb.Failed() {
			tb.Logf("----- BIRD %s said -----\n%s", name, p.out.String())
		}
	})
	netnstest.WaitFor(tb, 10*time.Second, 20*time.Millisecond, "BIRD "+name+"'s control socket", func() (bool, string) {
		select {
		case <-p.done:
			tb.Fatalf("BIRD %s exited:\n%s", name, p.out.String())
		default:
		}
		out, err := p.birdc("show", "status")
		return err == nil, out
	})
	return p
}

// birdc runs birdc on p's control socket (a path: reachable from any
// namespace).
func (p *birdProc) birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", p.sock}, args...)...).CombinedOutput()
	return string(out), err
}

func (p *birdProc) mustBirdc(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := p.birdc(args...)
	if err != nil {
		tb.Fatalf("BIRD %s: birdc %v: %v\n%s", p.name, args, err, out)
	}
	return out
}

// birdEstablished says whether `birdc show protocols` shows protocol name
// established.
func birdEstablished(out, name string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return strings.Contains(line, "Established")
		}
	}
	return false
}
