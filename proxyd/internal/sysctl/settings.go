// Package sysctl lists the kernel settings proxyd's datapath relies on
// (written by internal/sysctl, only when they differ).
package sysctl

import "github.com/nodenet/nodenet/internal/sysctl"

// Required are proxyd's settings (those of kube-proxy's IPVS mode).
func Required() []sysctl.Setting {
	return []sysctl.Setting{
		{Name: "net.ipv4.ip_forward", Value: "1", Why: "real servers on other nodes are reached by forwarding"},
		{Name: "net.ipv4.vs.conntrack", Value: "1", Why: "keep conntrack entries for IPVS connections, so nftables can masquerade them"},
		{Name: "net.ipv4.vs.expire_nodest_conn", Value: "1", Why: "drop connections to a deleted real server at once rather than black-holing them"},
		{Name: "net.ipv4.vs.expire_quiescent_template", Value: "1", Why: "expire session-affinity templates of a weight-0 real server, so affinity does not pin clients to a draining endpoint"},
	}
}

// StrictARP are the settings that keep the node from answering ARP for
// the VIPs its local routes deliver (every local address is answered for on
// every interface by default) and from naming a VIP as the sender of its own
// ARP requests.
func StrictARP() []sysctl.Setting {
	return []sysctl.Setting{
		{Name: "net.ipv4.conf.all.arp_ignore", Value: "1", Why: "answer ARP only for addresses of the interface asked on, not for VIPs"},
		{Name: "net.ipv4.conf.all.arp_announce", Value: "2", Why: "use the interface's own address as the sender of ARP requests, never a VIP"},
	}
}
