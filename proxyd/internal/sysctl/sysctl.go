// Package sysctl sets the kernel settings proxyd's datapath relies on,
// writing a value only when it differs (a restart writes nothing).
package sysctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Setting is one /proc/sys entry and the value proxyd needs.
type Setting struct {
	Name  string // dotted, e.g. net.ipv4.vs.conntrack
	Value string
	Why   string
}

// Required are proxyd's settings (those of kube-proxy's IPVS mode).
func Required() []Setting {
	return []Setting{
		{"net.ipv4.ip_forward", "1", "real servers on other nodes are reached by forwarding"},
		{"net.ipv4.vs.conntrack", "1", "keep conntrack entries for IPVS connections, so nftables can masquerade them"},
		{"net.ipv4.vs.expire_nodest_conn", "1", "drop connections to a deleted real server at once rather than black-holing them"},
		{"net.ipv4.vs.expire_quiescent_template", "1", "expire session-affinity templates of a weight-0 real server, so affinity does not pin clients to a draining endpoint"},
	}
}

// StrictARP are the settings that keep the node from answering ARP for
// the VIPs its local routes deliver (every local address is answered for on
// every interface by default) and from naming a VIP as the sender of its own
// ARP requests.
func StrictARP() []Setting {
	return []Setting{
		{"net.ipv4.conf.all.arp_ignore", "1", "answer ARP only for addresses of the interface asked on, not for VIPs"},
		{"net.ipv4.conf.all.arp_announce", "2", "use the interface's own address as the sender of ARP requests, never a VIP"},
	}
}

// Sysctl reads and writes settings under Root ("/proc/sys").
type Sysctl struct {
	Root string
}

// Apply sets each setting that differs and returns how many it wrote.
func (s Sysctl) Apply(settings []Setting) (int, error) {
	root := s.Root
	if root == "" {
		root = "/proc/sys"
	}
	writes := 0
	var errs []error
	for _, st := range settings {
		path := filepath.Join(root, strings.ReplaceAll(st.Name, ".", "/"))
		cur, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", st.Name, st.Why, err))
			continue
		}
		if strings.TrimSpace(string(cur)) == st.Value {
			continue
		}
		if err := os.WriteFile(path, []byte(st.Value), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("set %s=%s (%s): %w", st.Name, st.Value, st.Why, err))
			continue
		}
		writes++
	}
	return writes, errors.Join(errs...)
}
