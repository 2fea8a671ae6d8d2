// Command proxyd is nodenet's Service proxy: every ClusterIP, NodePort,
// ExternalIP and LoadBalancer IP becomes an IPVS virtual service and every
// ready endpoint a real server.
package main

import (
	"os"

	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/proxyd/internal/app"
)

func main() {
	os.Exit(daemon.Main(app.Spec(), daemon.OSEnv()))
}
