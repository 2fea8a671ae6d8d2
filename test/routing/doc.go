// Package routing is the kernel test of routerd: the real routerd binary,
// one process per node, against a real control plane, routing real TCP
// between pods of three nodes.
//
// Run it as root, after `make controlplane cni-plugins` (both cached):
//
//	go test -tags kernel -v ./test/routing
//
// It needs root for the network namespaces and skips without it (and,
// without the kernel tag, says so), skips when the control plane is not
// built (unless CI=true), and runs on the host's kernel.
//
// # The cluster
//
// A real kube-apiserver, etcd and kube-controller-manager (test/controlplane)
// on the host's loopback; kube-controller-manager's node IPAM gives each
// Node its pod CIDR. A topology (test/netns) of three nodes on one subnet
// and the world namespace, with no CNI config (Options.NoCNIConfig): until
// routerd writes it, no pod can start on a node.
//
//	world    198.18.0.1     a host outside the cluster (masquerade check)
//	nodeI    198.18.0.(10+I)  pod podI in the Node's pod CIDR, 198.18.(128+I).0/24
//
// routerd runs as in production, one process per node inside the node's
// namespace (test/daemonproc): `routerd run --node-name nodeI --kubeconfig
// <routerd's service account> --run-dir <its own> --peers= --cni-conf-dir
// <the node's> --ipam-data-dir <the node's> --tunnel none`, every other
// flag at its default (full iBGP mesh in AS 64512, graceful restart,
// masquerade on, route protocol 196). Its kubeconfig names
// https://127.0.0.1:<port>, which a relay in the node forwards to the
// apiserver. Nothing else routes: the pods of different nodes reach each
// other only through the routes routerd installs.
//
// # What TestRouting checks, in order
//
//   - start: each routerd writes its node's CNI config (bridge kube-bridge,
//     host-local IPAM over the Node's pod CIDR), establishes BGP with the
//     two other nodes, and installs a route to each other node's pod CIDR
//     via that node's IP, with protocol 196, and nothing else.
//   - pod-to-pod: a pod on each node (attached by the real CNI plugins
//     with routerd's config) reaches the pods of the other nodes over TCP
//     with its own address as the source (no NAT between pods).
//   - masquerade: a pod reaching the world (outside the pod CIDRs) arrives
//     with its node's address.
//   - restart: while a TCP connection between pods of node0 and node1
//     exchanges a message every few milliseconds, node1's routerd is
//     stopped (SIGTERM) and started again, then killed (-9) and started
//     again. The connection keeps working throughout, and no route of
//     protocol 196 is added, replaced or removed on any node (netlink route
//     notifications of every node, recorded from before the first stop
//     until the restarted routerd and its peers are back in sync).
//   - node-deleted: node2's routerd stops and its Node is deleted: node0
//     and node1 remove their route to node2's pod CIDR, drop node2 as a BGP
//     peer, and change no other route.
//
// # BenchmarkConvergence5k
//
// A smaller cluster (bench_test.go): node0 runs routerd alone
// (--full-mesh=false) with an external peer, a BIRD 2 in the world
// namespace announcing 5,000 /29s of 198.19.0.0/16; the same BIRD
// announces them in the same run to a second BIRD in node1, which
// installs them with its kernel protocol (protocol 12). It reports, for
// both receivers, the time from the last UPDATE on the wire (an AF_PACKET
// capture on each receiver's eth0) to the 5,000th route in the kernel
// (route notifications), the same for the withdrawal, the install rate,
// the route notifications of a routerd restart with the routes in place
// (0), and routerd's RSS with and without them:
//
//	go test -tags kernel -run '^$' -bench Convergence5k -benchtime 1x ./test/routing
package routing
