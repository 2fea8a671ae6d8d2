// Package proxyd holds the end-to-end tests of proxyd on a real kernel: the
// real proxyd binary programs IPVS, its VIP routes and its nftables table
// in a node of a network-namespace topology (test/netns) inside a VM that
// boots Debian's kernel (test/vm: the host kernel has no IPVS), against a
// real control plane (test/controlplane) that runs on the host.
//
//	go test -tags e2e -v ./test/e2e/proxyd        (as root)
//
// Two halves, one per build tag:
//
//   - host (tag e2e, host_test.go): starts the control plane on the host's
//     loopback with the VM's forward address in its serving certificate,
//     builds proxyd and this package's guest test binary (go test -c -tags
//     e2eguest), and boots the VM with the guest binary as its command, the
//     apiserver's port forwarded to ForwardAddr and a writable directory
//     for proxyd's logs. The guest's output streams into the test's.
//   - guest (tag e2eguest, guest_*_test.go): builds the topology (node0,
//     node1, the world namespace on the underlay), creates the Nodes, Pods
//     (status written by hand: there is no kubelet) and Services through
//     the API, runs proxyd in node0's namespace with the proxyd identity's
//     kubeconfig, and checks real TCP traffic and the kernel state.
//
// node0's namespace cannot reach the VM's network, so the guest relays
// 127.0.0.1:<apiserver port> in node0 to ForwardAddr:<port>: proxyd's
// kubeconfig names the relay, whose address the certificate already has.
//
// The guest binary skips unless the host test started it; running it by
// hand needs the environment described by the Env* constants.
//
// It needs root, the VM assets (hack/vm-assets.sh), the control plane
// binaries (hack/build-controlplane.sh) and the CNI plugins
// (hack/build-cni-plugins.sh), and skips without them unless CI=true (see
// vm.AssetsForTests and controlplane.StartForTest). Measured on 2 cores
// under TCG: about 15 s with warm Go build caches (control plane and
// builds 4.5-5 s, VM 9-10.5 s of which the guest test 5.5-7 s), about 3
// minutes with a cold one.
package proxyd

// The environment the host gives the guest test binary.
const (
	// EnvProxyd is the proxyd binary.
	EnvProxyd = "NODENET_E2E_PROXYD"
	// EnvAdminKubeconfig is the admin's kubeconfig, for the test itself:
	// its server is https://<ForwardAddr>:<port>.
	EnvAdminKubeconfig = "NODENET_E2E_ADMIN_KUBECONFIG"
	// EnvProxydKubeconfig is proxyd's kubeconfig (its service account, the
	// RBAC of the Helm chart): its server is https://127.0.0.1:<port>,
	// the relay in node0.
	EnvProxydKubeconfig = "NODENET_E2E_PROXYD_KUBECONFIG"
	// EnvAPIServer is the apiserver as the guest reaches it,
	// <ForwardAddr>:<port>; the relay listens on 127.0.0.1:<port> in node0.
	EnvAPIServer = "NODENET_E2E_APISERVER"
	// EnvOut is a directory shared read-write with the host: proxyd's logs.
	EnvOut = "NODENET_E2E_OUT"
)
