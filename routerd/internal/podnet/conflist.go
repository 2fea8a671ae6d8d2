package podnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Defaults and fixed names of the config.
const (
	// DefaultBridge is the pod bridge's name, kube-router's, so that a
	// node moving from kube-router keeps its bridge and running pods.
	DefaultBridge = "kube-bridge"
	// NetworkName is the CNI network's name (runtimes cache results under
	// it).
	NetworkName = "nodenet"
	// CNIVersion is the spec version of the config.
	CNIVersion = "1.0.0"
)

// Config is what the CNI config says.
type Config struct {
	// Bridge is the pod bridge; "" is DefaultBridge.
	Bridge string
	// MTU of the bridge and the pods' interfaces; 0 leaves it to the
	// bridge plugin (1500).
	MTU int
	// PodCIDRs are this node's pod CIDRs, at most one per family: each
	// gives the pod an address.
	PodCIDRs []netip.Prefix
	// PortMap adds the portmap plugin (hostPort).
	PortMap bool
	// IPAMDataDir is host-local's state directory; "" is its default
	// (/var/lib/cni/networks).
	IPAMDataDir string
}

// The config's JSON, as structs so that the field order (and so the bytes)
// never depends on map iteration.
type (
	confList struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []any  `json:"plugins"`
	}
	bridgeConf struct {
		Type             string   `json:"type"`
		Bridge           string   `json:"bridge"`
		IsGateway        bool     `json:"isGateway"`
		IsDefaultGateway bool     `json:"isDefaultGateway"`
		HairpinMode      bool     `json:"hairpinMode"`
		MTU              int      `json:"mtu,omitempty"`
		IPAM             ipamConf `json:"ipam"`
	}
	ipamConf struct {
		Type    string        `json:"type"`
		Ranges  [][]rangeConf `json:"ranges"`
		DataDir string        `json:"dataDir,omitempty"`
	}
	rangeConf struct {
		Subnet string `json:"subnet"`
	}
	portMapConf struct {
		Type         string      `json:"type"`
		Capabilities portMapCaps `json:"capabilities"`
		SNAT         bool        `json:"snat"`
	}
	portMapCaps struct {
		PortMappings bool `json:"portMappings"`
	}
)

// ConfList renders the CNI network list routerd writes (see the package
// documentation): the same Config gives the same bytes. The pod CIDRs are
// listed IPv4 first, whatever their order in c.
func ConfList(c Config) ([]byte, error) {
	bridge := c.Bridge
	if bridge == "" {
		bridge = DefaultBridge
	}
	if err := checkLinkName(bridge); err != nil {
		return nil, fmt.Errorf("bridge: %w", err)
	}
	cidrs, err := checkPodCIDRs(c.PodCIDRs)
	if err != nil {
		return nil, err
	}
	if err := checkMTU(c.MTU, cidrs); err != nil {
		return nil, err
	}
	if c.IPAMDataDir != "" && !strings.HasPrefix(c.IPAMDataDir, "/") {
		return nil, fmt.Errorf("IPAM data directory %q is not an absolute path", c.IPAMDataDir)
	}
	ranges := make([][]rangeConf, len(cidrs))
	for i, p := range cidrs {
		ranges[i] = []rangeConf{{Subnet: p.String()}}
	}
	list := confList{
		CNIVersion: CNIVersion,
		Name:       NetworkName,
		Plugins: []any{bridgeConf{
			Type:             "bridge",
			Bridge:           bridge,
			IsGateway:        true,
			IsDefaultGateway: true,
			HairpinMode:      true,
			MTU:              c.MTU,
			IPAM:             ipamConf{Type: "host-local", Ranges: ranges, DataDir: c.IPAMDataDir},
		}},
	}
	if c.PortMap {
		list.Plugins = append(list.Plugins, portMapConf{
			Type: "portmap", Capabilities: portMapCaps{PortMappings: true}, SNAT: true,
		})
	}
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// checkPodCIDRs validates the pod CIDRs and returns them IPv4 first.
func checkPodCIDRs(cidrs []netip.Prefix) ([]netip.Prefix, error) {
	if len(cidrs) == 0 {
		return nil, errors.New("no pod CIDR")
	}
	var v4, v6 int
	for _, p := range cidrs {
		if err := checkCIDR(p); err != nil {
			return nil, fmt.Errorf("pod CIDR: %w", err)
		}
		if p.Addr().Is4() {
			v4++
		} else {
			v6++
		}
	}
	if v4 > 1 || v6 > 1 {
		// host-local would give every pod an address from each.
		return nil, fmt.Errorf("pod CIDRs %v: more than one of a family", cidrs)
	}
	out := slices.Clone(cidrs)
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out, nil
}

// checkMTU: 0 (unset), or what the kernel accepts on the bridge and the
// pods' veths: 68 (IPv4's minimum) to 65535, at least 1280 with IPv6.
func checkMTU(mtu int, cidrs []netip.Prefix) error {
	if mtu == 0 {
		return nil
	}
	low := 68
	for _, p := range cidrs {
		if p.Addr().Is6() {
			low = 1280
		}
	}
	if mtu < low || mtu > 65535 {
		return fmt.Errorf("MTU %d out of range (%d to 65535)", mtu, low)
	}
	return nil
}

// checkLinkName says why the kernel would refuse name for a network
// interface (dev_valid_name): empty, 16 bytes or more, "." or "..", or
// containing '/', ':', white space or NUL.
func checkLinkName(name string) error {
	switch {
	case name == "":
		return errors.New("empty interface name")
	case len(name) > 15:
		return fmt.Errorf("interface name %q longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q", name)
	case strings.ContainsAny(name, "/: \t\n\v\f\r\x00"):
		return fmt.Errorf("interface name %q contains '/', ':', white space or NUL", name)
	}
	return nil
}
