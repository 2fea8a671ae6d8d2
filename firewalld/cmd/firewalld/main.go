// Command firewalld enforces Kubernetes NetworkPolicy (ingress and egress) on
// the pods of its node with one nftables table.
package main

import (
	"os"

	"github.com/nodenet/nodenet/internal/daemon"
)

func main() {
	os.Exit(daemon.Main(daemon.Spec{Name: "firewalld", MetricsPort: 10282}, daemon.OSEnv()))
}
