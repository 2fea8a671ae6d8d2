// Package egress masquerades the traffic of this node's pods that leaves
// the cluster: a pod's connection to anything outside the cluster's
// addresses goes out with the node's address, so the world never needs a
// route back to pod CIDRs, while traffic between pods, and from pods to
// Services, keeps the pod's address (NetworkPolicy and the receiving pod
// see who sent it).
//
// # The table
//
// One table, family inet, named nodenet-routerd, applied with
// github.com/google/nftables in one transaction (one Conn.Flush) per
// Apply. It has no "owner" flag: the kernel would delete an owned table
// when routerd exits, and every pod's outgoing connections would lose
// their masquerade during a restart or upgrade.
//
//	table inet nodenet-routerd {
//		set pod_cidrs4 { type ipv4_addr; flags interval; }       this node's pod CIDRs
//		set pod_cidrs6 { type ipv6_addr; flags interval; }
//		set cluster_cidrs4 { type ipv4_addr; flags interval; }   never masqueraded
//		set cluster_cidrs6 { type ipv6_addr; flags interval; }
//
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			ip saddr @pod_cidrs4 ip daddr != @cluster_cidrs4 masquerade fully-random
//			ip6 saddr @pod_cidrs6 ip6 daddr != @cluster_cidrs6 masquerade fully-random
//		}
//	}
//
// (Each rule also carries a comment.) The cluster sets hold what
// Desired.NoMasquerade lists (every pod CIDR of the cluster, the Service
// CIDRs, configured extras) and this node's own pod CIDRs, merged into
// disjoint ranges (an interval set refuses overlapping elements). Traffic
// from a pod to another pod on this node's bridge is not masqueraded
// either: its destination is in the node's pod CIDRs, so no interface
// exception is needed. Fully random source ports avoid the SNAT port
// collisions of many pods talking to one destination (kube-router and
// Calico do the same).
//
// The rules are static; everything that changes is a set element. NAT
// binds on a connection's first packet: changing the sets affects new
// connections only.
//
// # Applying
//
// Apply computes the sets' ranges from Desired and compares them: on the
// first Apply, after an error and after Invalidate with what the kernel
// holds (table, chain, rules, set definitions and elements); otherwise
// with what it wrote last. When nothing differs it writes nothing (a
// restarted routerd with the same CIDRs makes no kernel write); when only
// CIDRs differ it adds and deletes set elements; a missing table, or one
// whose layout is not this one (a foreign or older table of that name), is
// deleted and created anew with its elements in the same transaction, so
// packets see the old table or the new one, never none. Delete removes the
// table and nothing else (routerd cleanup).
//
// Fake is the same applier over an in-memory kernel, for the tests of
// routerd's sync loop.
package egress
