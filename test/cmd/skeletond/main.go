// Command skeletond is the bare daemon skeleton under the name it is run as
// (routerd, proxyd or firewalld): sockets, health, status, facts and signals
// without any datapath. test/skeleton runs three copies of it to test what
// every daemon shares as real processes, on any kernel and without an API
// server.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/nodenet/nodenet/internal/config"
	"github.com/nodenet/nodenet/internal/daemon"
)

func main() {
	name := filepath.Base(os.Args[0])
	if !slices.Contains(config.Daemons(), name) {
		fmt.Fprintf(os.Stderr, "skeletond: run me as one of %v (a link named so), not %q\n", config.Daemons(), name)
		os.Exit(2)
	}
	os.Exit(daemon.Main(daemon.Spec{Name: name}, daemon.OSEnv()))
}
