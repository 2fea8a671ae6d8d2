// Package nft is proxyd's one nftables table: masquerading of Service
// traffic, hairpin (pod to local pod through a VIP) and
// loadBalancerSourceRanges, beside IPVS, which does the load balancing.
//
// # The table
//
// One table, family inet, named nodenet-proxyd, applied with
// github.com/google/nftables in one transaction (one Conn.Flush) per sync.
// Its chains and rules are static; everything that changes is a set
// element (the knftables rule), so a sync adds and deletes elements only.
// It has no "owner" flag: the kernel would delete an owned table when
// proxyd exits, and Services would lose their masquerading during every
// restart.
//
// Hooks and priorities:
//
//	prerouting   filter  -110 (dstnat - 10)  packets arriving: before IPVS (LOCAL_IN) and dstnat
//	output       filter  -110                this node's own packets: before IPVS's LOCAL_OUT hook (-98)
//	postrouting  nat      100 (srcnat)       after IPVS has forwarded the packet (it re-enters at LOCAL_OUT)
//
// Both filter chains start with "ct state established,related accept": a
// connection is decided on its first packet (NAT binds on it, and
// loadBalancerSourceRanges apply to new connections, as in kube-proxy).
// An accept ends only proxyd's chain; other tables still see the packet.
//
// Marks (meta mark, the skb's; it survives IPVS's NAT forward):
//
//	0x4000 MasqueradeMark  a client outside this node's pod CIDRs reaching a VIP that
//	                       does not keep client addresses (kube-proxy's KUBE-MARK-MASQ)
//	0x2000 HairpinMark     a local pod reaching a VIP: masqueraded if IPVS sends it to
//	                       a local pod
//
// postrouting masquerades (fully random ports, like kube-proxy) what
// carries MasqueradeMark, and what carries HairpinMark and goes to a local
// pod, and clears both bits. Without the hairpin masquerade a backend pod
// on the same bridge answers the client pod directly, past IPVS's de-NAT,
// and a pod reaching itself through a VIP never gets its answer.
//
// Why a hairpin mark rather than "ct original ip daddr . meta l4proto . ct
// original proto-dst @vips4" in postrouting: google/nftables v0.3.0 cannot
// write nft's "ct original ip daddr" (NFT_CT_DST_IP needs a direction
// attribute its Ct expression sends only for other keys; the kernel
// answers EINVAL). Its NFT_CT_DST works in the kernel, but nft 1.0.6 then
// aborts on "nft list ruleset" (assertion in netlink_parse_concat_expr),
// and the library cannot read the rule back (it decodes the u8 direction
// as a u32). Marking on the way in gives the same decision: the mark is set
// on the first packet before IPVS, the masquerade is decided on that same
// packet after it.
//
// loadBalancerSourceRanges: a packet to a restricted LoadBalancer VIP key
// (lb_restricted4/6) whose VIP . source is not in lb_allowed4/6 is dropped
// in prerouting, before IPVS sees it, and in output (this node's own
// connections, as kube-proxy does). A restricted key without ranges lets
// nobody in.
//
// # Sets
//
//	vips4/6            ipv4_addr . inet_proto . inet_service   every virtual service, NodePorts on node addresses included
//	vips_local4/6      same                                    externalTrafficPolicy Local: clients keep their address
//	pod_cidrs4/6       ipv4_addr, interval                     this node's pod CIDRs
//	lb_restricted4/6   same as vips                            LoadBalancer keys with source ranges
//	lb_allowed4/6      ipv4_addr . inet_proto . inet_service . ipv4_addr, interval   VIP key . allowed source range
//
// Keys are concatenations with every field padded to 4 bytes (registers):
// 198.19.0.10 . tcp . 80 is c6 13 00 0a | 06 00 00 00 | 00 50 00 00.
// Without pod CIDRs (not known yet) every client is "outside": everything
// to a VIP is masqueraded, and there is no hairpin.
//
// # The ruleset, as nft lists it
//
//	table inet nodenet-proxyd {
//		set vips4 { type ipv4_addr . inet_proto . inet_service ... }
//		set vips_local4 { type ipv4_addr . inet_proto . inet_service ... }
//		set pod_cidrs4 { type ipv4_addr; flags interval ... }
//		set lb_restricted4 { type ipv4_addr . inet_proto . inet_service ... }
//		set lb_allowed4 { type ipv4_addr . inet_proto . inet_service . ipv4_addr; flags interval ... }
//		(and the same five for IPv6)
//
//		chain prerouting {
//			type filter hook prerouting priority dstnat - 10; policy accept;
//			ct state established,related accept
//			ip daddr . meta l4proto . th dport @lb_restricted4 ip daddr . meta l4proto . th dport . ip saddr != @lb_allowed4 drop
//			ip6 daddr . meta l4proto . th dport @lb_restricted6 ip6 daddr . meta l4proto . th dport . ip6 saddr != @lb_allowed6 drop
//			ip daddr . meta l4proto . th dport @vips4 ip daddr . meta l4proto . th dport != @vips_local4 ip saddr != @pod_cidrs4 meta mark set meta mark | 0x00004000
//			ip daddr . meta l4proto . th dport @vips4 ip saddr @pod_cidrs4 meta mark set meta mark | 0x00002000
//			ip6 daddr . meta l4proto . th dport @vips6 ip6 daddr . meta l4proto . th dport != @vips_local6 ip6 saddr != @pod_cidrs6 meta mark set meta mark | 0x00004000
//			ip6 daddr . meta l4proto . th dport @vips6 ip6 saddr @pod_cidrs6 meta mark set meta mark | 0x00002000
//		}
//		chain output {
//			type filter hook output priority -110; policy accept;
//			(the same rules as prerouting)
//		}
//		chain postrouting {
//			type nat hook postrouting priority srcnat; policy accept;
//			meta mark & 0x00004000 == 0x00004000 meta mark set meta mark & 0xffff9fff masquerade fully-random
//			meta mark & 0x00002000 == 0x00002000 ip daddr @pod_cidrs4 meta mark set meta mark & 0xffff9fff masquerade fully-random
//			meta mark & 0x00002000 == 0x00002000 ip6 daddr @pod_cidrs6 meta mark set meta mark & 0xffff9fff masquerade fully-random
//		}
//	}
//
// (Each rule also carries a comment.)
//
// # IPVS and netfilter
//
// This relies on IPVS's conntrack mode (net.ipv4.vs.conntrack=1, set by
// proxyd's IPVS side): IPVS then keeps the connection's conntrack entry,
// changing only its reply tuple, so netfilter's NAT still runs for the
// forwarded packet. IPVS steals the packet at LOCAL_IN (before conntrack
// confirms it) and sends it on through LOCAL_OUT and POSTROUTING, where
// the masquerade binds. ip_forward must be on. This is kube-proxy's IPVS
// mode scheme (KUBE-MARK-MASQ, KUBE-POSTROUTING).
//
// # Applying
//
// Build is pure: model.State and the node's pod CIDRs to Desired. Apply
// encodes Desired into elements and diffs them with what the table holds:
// on the first Apply, after an error and after Invalidate, it reads the
// table from the kernel (full); otherwise it trusts what it wrote last
// (partial: only the deltas). A table that is missing, or whose static
// part (table flags, chains, rules, set definitions) is not proxyd's, is
// deleted and created anew with its elements in the same transaction, so
// packets see the old table or the new one, never none. When nothing
// differs, nothing is written: a restarted proxyd with the same state
// makes no kernel write. A set's elements are spread over several
// messages of the same transaction (one netlink attribute holds at most
// 64 KiB), and the socket buffers are raised to fit the batch. Delete
// removes the table and nothing else.
//
// Fake is the same applier over an in-memory kernel, for the sync loop's
// tests.
package nft
