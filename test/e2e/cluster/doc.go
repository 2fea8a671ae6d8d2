// Package cluster holds the end-to-end tests of the three daemons together,
// the way a cluster runs them: a real control plane (test/controlplane) on
// the host, three nodes as network namespaces (test/netns) inside a VM that
// boots Debian's kernel (test/vm: IPVS), each node running routerd, proxyd
// and firewalld as separate processes (test/daemonproc) that share the
// node's run directory (the DaemonSet pod's emptyDir) and each use their
// own service account's kubeconfig. Pods are namespaces attached by the
// real CNI plugins with the config routerd wrote; the test plays kubelet
// (pod status written by hand).
//
//	go test -tags e2e -v ./test/e2e/cluster        (as root)
//
// Two halves on the shared harness (test/e2e/harness):
//
//   - host (tag e2e, host_test.go): harness.RunGuest starts the control
//     plane, builds the three daemons and the guest test binary, and boots
//     the VM (br_netfilter loaded, as on a node where firewalld polices
//     bridged pod traffic).
//   - guest (tag e2eguest, guest_*_test.go): builds the cluster (nodes
//     registered, so that kube-controller-manager allocates their pod
//     CIDRs; a relay to the apiserver and the three daemons in each node;
//     routerd peers over BGP with the other nodes, and with BIRD in the
//     world namespace, which observes the advertisements),
//     then runs the scenarios of issue 8 against it with real TCP traffic
//     and prints a summary table (scenario, result, duration). The
//     topology has a fourth node, registered and started only by
//     scenario 3 (a node joining), a member of the cluster after it. It
//     sits on a subnet of its own behind the world (a router): routerd
//     (--tunnel=ipip) routes the pods of the three underlay nodes to each
//     other directly, and those of the joiner through an IPIP tunnel per
//     node pair.
//
// Address plan (test/netns, test/controlplane): underlay 198.18.0.0/24
// (world .1, node i .(10+i)), the joiner's subnet 198.18.1.0/24 (world
// .1, node3 .13), node i's pods 198.18.(128+i).0/24, Services
// 198.19.0.0/16, the external IP of scenario 3 198.18.64.10.
package cluster
