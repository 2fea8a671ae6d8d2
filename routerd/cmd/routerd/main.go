//go:debug multipathtcp=0

// Command routerd is nodenet's pod-to-pod router: it takes the node's pod
// CIDR, writes the bridge CNI config, peers with the other nodes over BGP and
// installs the routes it learns.
//
// The go:debug directive keeps net.Listen on plain TCP whether or not routerd
// is built in the workspace (see routerd/go.mod).
package main

import (
	"os"

	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/routerd/internal/app"
)

func main() {
	os.Exit(daemon.Main(app.Spec(), daemon.OSEnv()))
}
