// Command etcd is the etcd server, built from the module proxy for the test
// control plane (hack/build-controlplane.sh): etcd publishes no Go module for
// its binary, so this wrapper calls the server's own entry point.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
