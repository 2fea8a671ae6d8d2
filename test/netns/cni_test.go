package netns

import (
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
)

// These run without root, in the unit layer.

func TestBridgeConfList(t *testing.T) {
	dir := t.TempDir()
	b, err := bridgeConfList(nodePodCIDR(1), "/state/node1/host-local")
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(filepath.Join(dir, cniConfFile), b); err != nil {
		t.Fatal(err)
	}
	// Loaded the way CreatePod loads it.
	list, err := loadNodeConfList(dir)
	if err != nil {
		t.Fatal(err)
	}
	if list.CNIVersion != cniVersion || len(list.Plugins) != 1 || list.Plugins[0].Network.Type != "bridge" {
		t.Fatalf("config list %+v", list)
	}
	var bridge struct {
		Bridge           string `json:"bridge"`
		IsDefaultGateway bool   `json:"isDefaultGateway"`
		HairpinMode      bool   `json:"hairpinMode"`
		IPAM             struct {
			Type    string                `json:"type"`
			DataDir string                `json:"dataDir"`
			Ranges  [][]map[string]string `json:"ranges"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(list.Plugins[0].Bytes, &bridge); err != nil {
		t.Fatal(err)
	}
	if bridge.Bridge != "kube-bridge" || !bridge.IsDefaultGateway || !bridge.HairpinMode ||
		bridge.IPAM.Type != "host-local" || bridge.IPAM.DataDir != "/state/node1/host-local" ||
		len(bridge.IPAM.Ranges) != 1 || bridge.IPAM.Ranges[0][0]["subnet"] != "198.18.129.0/24" {
		t.Fatalf("bridge plugin config %+v", bridge)
	}
}

func TestNoConfigIsNetworkNotReady(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("not a config"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadNodeConfList(dir); err == nil || !strings.Contains(err.Error(), "network not ready") {
		t.Fatalf("err = %v, want network not ready", err)
	}
}

func TestPodAddress(t *testing.T) {
	host, cont := 0, 1
	res := &current.Result{
		CNIVersion: cniVersion,
		Interfaces: []*current.Interface{
			{Name: "veth1234", Mac: "aa:aa:aa:aa:aa:aa"},
			{Name: "eth0", Mac: "0a:58:c6:12:80:05", Sandbox: "/run/x"},
		},
		IPs: []*current.IPConfig{
			{Interface: &host, Address: net.IPNet{IP: net.IPv4(198, 18, 128, 1), Mask: net.CIDRMask(24, 32)}},
			{Interface: &cont, Address: net.IPNet{IP: net.IPv4(198, 18, 128, 5), Mask: net.CIDRMask(24, 32)}},
		},
	}
	ip, mac, err := podAddress(res, "eth0")
	if err != nil || ip != netip.MustParseAddr("198.18.128.5") || mac.String() != "0a:58:c6:12:80:05" {
		t.Fatalf("podAddress = %s, %s, %v", ip, mac, err)
	}
	if _, _, err := podAddress(res, "eth1"); err == nil {
		t.Fatal("address for a missing interface")
	}
}

func TestAddressPlan(t *testing.T) {
	if got := nodeIP(3, false); got != netip.MustParseAddr("198.18.0.13") {
		t.Errorf("nodeIP(3, false) = %s", got)
	}
	if got := nodeIP(3, true); got != netip.MustParseAddr("198.18.1.13") || !RoutedCIDR().Contains(got) || !RoutedCIDR().Contains(RoutedWorldIP()) {
		t.Errorf("nodeIP(3, true) = %s", got)
	}
	last := nodePodCIDR(MaxNodes - 1)
	if last != netip.MustParsePrefix("198.18.255.0/24") || !ClusterCIDR().Contains(last.Addr()) {
		t.Errorf("last pod CIDR %s", last)
	}
	if !UnderlayCIDR().Contains(nodeIP(MaxNodes-1, false)) || !UnderlayCIDR().Contains(WorldIP()) {
		t.Error("node or world address outside the underlay")
	}
	if checkNodes(0, 0) == nil || checkNodes(MaxNodes+1, 0) == nil || checkNodes(MaxNodes, 0) != nil ||
		checkNodes(2, 3) == nil || checkNodes(2, -1) == nil || checkNodes(2, 2) != nil {
		t.Error("checkNodes bounds")
	}
	for name, ok := range map[string]bool{"pod-a": true, "a": true, "Pod": false, "-a": false, "a_b": false, "": false, strings.Repeat("a", 64): false} {
		if (checkPodName(name) == nil) != ok {
			t.Errorf("checkPodName(%q) ok = %v, want %v", name, !ok, ok)
		}
	}
}
