//go:build e2eguest

package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/test/e2e/harness"
)

// The scenarios of issue 8, in the order they run on one cluster; the
// summary has a row for each (and for the setup).
const (
	scenarioSetup    = "setup: 3 nodes × routerd, proxyd, firewalld"
	scenarioDemo     = "1 demo: pod to pod, ClusterIP round robin, NodePort, policy"
	scenarioSameNode = "2 same-node service traffic policed"
	scenarioCoord    = "3 coordination: VIP once programmed, ETP Local, CNI after firewalld"
	scenarioToggles  = "4 toggles: firewalld, proxyd or routerd disabled on a node"
	scenarioRestart  = "5 kill -9 and restart of every daemon, upgrades: nothing dropped"
	scenarioBad      = "6 bad input: evented, everything else works"
)

// TestGuest is the guest half (see the package comment).
func TestGuest(t *testing.T) {
	harness.SkipUnlessGuest(t, "TestClusterInVM")
	sum := harness.NewSummary(t, scenarioSetup, scenarioDemo, scenarioSameNode, scenarioCoord,
		scenarioToggles, scenarioRestart, scenarioBad)

	done := sum.Step(scenarioSetup)
	c := func() *cluster {
		defer done(t)
		return newCluster(t)
	}()

	sum.Run(t, scenarioDemo, c.testDemo)
	sum.Run(t, scenarioSameNode, c.testSameNode)
	sum.Run(t, scenarioCoord, c.testCoordination)
	sum.Run(t, scenarioToggles, c.testToggles)
	sum.Run(t, scenarioRestart, c.testRestart)
	sum.Run(t, scenarioBad, c.testBadInput)
	c.checkNoForbidden(t)
	c.logMemory(t)
}

// checkNoForbidden fails t when a daemon's log says the API server
// refused it something: each runs as its chart's service account
// (controlplane.Identity, test/controlplane/rbac.yaml), so its role must
// be enough for everything it does, in every scenario.
func (c *cluster) checkNoForbidden(t *testing.T) {
	for i, ds := range c.daemons {
		for _, name := range daemonNames {
			for line := range strings.SplitSeq(ds[name].Logs(1<<30), "\n") {
				if strings.Contains(line, "forbidden") {
					t.Errorf("%s on %s was refused by the API server: %s", name, c.nodes[i].Name, line)
				}
			}
		}
	}
}

// logMemory logs the VM's memory and the daemons' resident sets: what
// sizes the VM (harness.Config.MemoryMiB).
func (c *cluster) logMemory(t *testing.T) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return
	}
	var parts []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		switch k {
		case "MemTotal", "MemAvailable", "Shmem":
			parts = append(parts, k+" "+strings.TrimSpace(v))
		}
	}
	var daemons []string
	total := 0
	for i, ds := range c.daemons {
		for _, name := range daemonNames {
			kb := rss(ds[name].PID())
			total += kb
			daemons = append(daemons, fmt.Sprintf("%s/%s %d", c.nodes[i].Name, name, kb/1024))
		}
	}
	t.Logf("memory: %s; the daemons' RSS %d MiB (MiB: %s); the test's %d MiB",
		strings.Join(parts, ", "), total/1024, strings.Join(daemons, ", "), rss(os.Getpid())/1024)
}

// rss is a process's resident set in kB (0 when unknown).
func rss(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var n int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &n)
			return n
		}
	}
	return 0
}
