// Package harness is what the end-to-end tests under test/e2e share. Each
// such package has two halves, one per build tag:
//
//   - host (tag e2e): RunGuest starts the control plane on the host's
//     loopback with the VM's forward address in its serving certificate,
//     builds the daemons, the package's guest test binary (go test -c
//     -tags e2eguest) and the CNI plugins meanwhile, writes the
//     kubeconfigs the guest needs, and boots the VM (test/vm) with the
//     guest binary as its command, the apiserver's port forwarded to
//     vm.ForwardAddr and a writable directory for logs. The guest's output
//     streams into the test's.
//   - guest (tag e2eguest): builds a topology of node namespaces
//     (test/netns), reads what the host gave it with Binary, Kubeconfig,
//     AdminClient and Out, makes the apiserver reachable inside a node
//     with StartRelay, runs the daemons there (test/daemonproc) and checks
//     real traffic. SkipUnlessGuest skips it when run outside the VM.
//
// A node's namespace cannot reach the VM's network, so the guest relays
// 127.0.0.1:<apiserver port> in a node to vm.ForwardAddr:<port>: the
// daemons' kubeconfigs name that address, which the certificate has.
//
// A Summary collects the result and duration of each scenario of a guest
// test; the guest writes it to Out, and RunGuest prints it again at the
// end, with the host's timings.
//
// The host half needs root, the VM assets (hack/vm-assets.sh), the control
// plane binaries (hack/build-controlplane.sh) and the CNI plugins
// (hack/build-cni-plugins.sh), and skips without them unless CI=true (see
// vm.AssetsForTests and controlplane.StartForTest).
package harness

// The environment the host gives the guest test binary.
const (
	// EnvAPIServer is the apiserver as the guest reaches it,
	// <vm.ForwardAddr>:<port>; a relay listens on 127.0.0.1:<port> in a
	// node.
	EnvAPIServer = "NODENET_E2E_APISERVER"
	// EnvAdminKubeconfig is the admin's kubeconfig, for the test itself:
	// its server is https://<vm.ForwardAddr>:<port>.
	EnvAdminKubeconfig = "NODENET_E2E_ADMIN_KUBECONFIG"
	// EnvKubeconfigPrefix + the identity in upper case (ROUTERD, PROXYD,
	// FIREWALLD) is that daemon identity's kubeconfig (its service
	// account, the RBAC of the Helm chart): its server is
	// https://127.0.0.1:<port>, a relay in the daemon's node.
	EnvKubeconfigPrefix = "NODENET_E2E_KUBECONFIG_"
	// EnvBinPrefix + the daemon in upper case is the daemon's binary.
	EnvBinPrefix = "NODENET_E2E_BIN_"
	// EnvOut is a directory shared read-write with the host: the daemons'
	// logs, the summary.
	EnvOut = "NODENET_E2E_OUT"
)

// SummaryFile is the name of the summary the guest writes into Out.
const SummaryFile = "summary.txt"
