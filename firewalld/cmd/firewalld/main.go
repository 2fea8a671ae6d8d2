// Command firewalld enforces Kubernetes NetworkPolicy (ingress and egress) on
// the pods of its node with one nftables table.
package main

import (
	"os"

	"github.com/nodenet/nodenet/firewalld/internal/app"
	"github.com/nodenet/nodenet/internal/daemon"
)

func main() {
	os.Exit(daemon.Main(app.Spec(), daemon.OSEnv()))
}
