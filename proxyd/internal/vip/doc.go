// Package vip is proxyd's port to local delivery of service VIPs: a narrow
// interface in proxyd's types (Interface), the kernel implementation over
// rtnetlink (Kernel) and an in-memory one with operation counts (Fake).
//
// IPVS hooks LOCAL_IN and LOCAL_OUT, so it only sees packets the node
// delivers to itself: every ClusterIP, ExternalIP and LoadBalancer IP must
// be local. kube-proxy (IPVS mode) and kube-router make each VIP an address
// of one dummy link; the kernel keeps a link's IPv4 addresses in a list it
// walks on every insert, so that costs quadratic time (BenchmarkAddresses:
// 1k 35 ms, 10k 1.5 s, 30k 17 s on lo here; in the VM, on a dummy link,
// 0.5 s, 14 s, 142 s). proxyd adds one local route per VIP instead, the
// same route the kernel makes for an address but without the address:
//
//	local 198.19.0.10 dev lo table local proto 79 scope host metric 79
//	local 2001:db8:19::10 dev lo table local proto 79 metric 79
//
// The local table is a trie (IPv4) or radix tree (IPv6), so each insert
// costs the same at 30k routes as at 1k (BenchmarkLocalRoutes: ≈3.4 µs a
// VIP in batches, 30k in 0.1 s). A packet to the VIP, from a pod, from the node, or
// routed to the node, is delivered locally; IPVS takes it from there. The
// metric and the protocol number are RouteMetric and RouteProtocol, whose
// comments say why.
//
// # Ownership
//
// proxyd's routes are those of protocol RouteProtocol, type local, in the
// local table, to a single address (/32, /128). List reports exactly
// those, so a restarted proxyd adopts what its predecessor added and
// converges by diff. Delete asks the kernel to delete a route of that
// protocol only: the local routes of node addresses (protocol "kernel"),
// routes other daemons or an administrator added (other protocols), and
// anything outside the local table are never listed and never deleted.
// proxyd's route for a VIP that is also a node address coexists with the
// address's route (a different metric), so adding, deleting, adding or
// removing the address, in any order, leaves each owner's route alone.
//
// # Idempotence
//
// Add of a VIP proxyd's route already delivers, and Delete of a VIP
// proxyd has no route for, succeed: a reconciler may repeat a write after
// an unknown outcome. Errors callers may act on wrap ErrInvalid, ErrExists,
// ErrOverrun or ErrInconsistentDump; a VIP's error is a *VIPError, and the
// batch forms join one per failed VIP, so one bad VIP never blocks the rest.
//
// The routes go with lo: taking lo down deletes the IPv6 ones (the IPv4
// ones stay; measured on 6.18 and Debian's 6.1). proxyd's periodic full
// sync puts them back, as it repairs any other change made by someone
// else (TestKernelRepairsAfterLoopbackDown).
//
// # Neighbour discovery
//
// A local route makes the kernel treat the VIP as its own for ARP as an
// address of a dummy link does (arp_kernel_test.go shows each point):
//
//   - With net.ipv4.conf.*.arp_ignore=0 (the default) the node answers ARP
//     for every VIP on every interface: ARP replies for any target the
//     routing tables call local. With arp_ignore=1 it answers only for
//     addresses of the receiving interface, never for a VIP.
//   - With arp_announce=0 (the default), when the node itself asks for a
//     client's MAC to answer it from a VIP, the request names the VIP as
//     sender, and hosts on the link learn "VIP is at this node". With
//     arp_announce=2 the sender is an address of the outgoing interface.
//   - IPv6 needs neither: neighbour solicitations are answered, and
//     solicitations sent name a source, only for addresses of the
//     interface, which a VIP never is.
//
// Several nodes claiming a LoadBalancer IP on a LAN breaks layer-2
// announcers (MetalLB's speaker answers for it from one node), which is why
// kube-proxy's IPVS mode has strictARP (arp_ignore=1, arp_announce=2). This
// package changes no sysctl: that is proxyd's start-up policy.
package vip
