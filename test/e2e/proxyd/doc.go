// Package proxyd holds the end-to-end tests of proxyd on a real kernel: the
// real proxyd binary programs IPVS, its VIP routes and its nftables table
// in a node of a network-namespace topology (test/netns) inside a VM that
// boots Debian's kernel (test/vm: the host kernel has no IPVS), against a
// real control plane (test/controlplane) that runs on the host.
//
//	go test -tags e2e -v ./test/e2e/proxyd        (as root)
//
// Two halves, one per build tag, on the shared harness (test/e2e/harness):
//
//   - host (tag e2e, host_test.go): harness.RunGuest starts the control
//     plane on the host, builds proxyd and this package's guest test
//     binary, and boots the VM with it, the apiserver's port forwarded and
//     a writable directory for proxyd's logs.
//   - guest (tag e2eguest, guest_*_test.go): builds the topology (node0,
//     node1, the world namespace on the underlay), creates the Nodes, Pods
//     (status written by hand: there is no kubelet) and Services through
//     the API, runs proxyd in node0's namespace with the proxyd identity's
//     kubeconfig (through the harness's relay in node0), and checks real
//     TCP traffic and the kernel state.
//
// The guest binary skips unless the host test started it.
//
// It needs root, the VM assets (hack/vm-assets.sh), the control plane
// binaries (hack/build-controlplane.sh) and the CNI plugins
// (hack/build-cni-plugins.sh), and skips without them unless CI=true (see
// vm.AssetsForTests and controlplane.StartForTest). Measured on 2 cores
// under TCG: about 15 s with warm Go build caches (control plane and
// builds 4.5-5 s, VM 9-10.5 s of which the guest test 5.5-7 s), about 3
// minutes with a cold one.
package proxyd
