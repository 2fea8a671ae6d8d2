package netns

import (
	"os"
	"path/filepath"
)

// Options shape a topology. The zero value is one node.
type Options struct {
	// Nodes is the number of nodes (1 to MaxNodes; 0 means 1).
	Nodes int

	// RoutedNodes is how many of the nodes (the last ones) sit on a
	// second underlay subnet, RoutedCIDR, that the world routes to and
	// from the first: nodes that do not share a subnet with the others,
	// which routerd reaches through IPIP tunnels. 0: one subnet.
	RoutedNodes int

	// StateDir holds the run directories (namespace pins, CNI state).
	// Default: $NODENET_NETNS_DIR, else /run/nodenet-test. Leftovers of
	// crashed runs are swept from this directory only.
	StateDir string

	// CNIBinDir holds prebuilt bridge, host-local and loopback plugins.
	// Default: $NODENET_CNI_BIN_DIR, else the cache that
	// hack/build-cni-plugins.sh fills (built on first use).
	CNIBinDir string

	// NoCNIConfig leaves every node's CNI config dir (Node.CNIConfDir)
	// empty, for tests where a daemon (routerd) writes the config: until it
	// does, CreatePod fails with "network not ready", as a kubelet would.
	NoCNIConfig bool

	// Label is recorded in the run directory's owner record, for humans
	// looking at leftovers (New uses the test's name).
	Label string

	// Logf, when set, receives progress messages (New sets it to t.Logf).
	Logf func(format string, args ...any)
}

func (o Options) nodes() int {
	if o.Nodes == 0 {
		return 1
	}
	return o.Nodes
}

func (o Options) stateDir() (string, error) {
	d := o.StateDir
	if d == "" {
		d = os.Getenv("NODENET_NETNS_DIR")
	}
	if d == "" {
		d = defaultStateDir
	}
	return filepath.Abs(d)
}
