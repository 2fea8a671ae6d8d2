//go:build kernel

package app

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/routerd/internal/controller"
	"github.com/nodenet/nodenet/routerd/internal/egress"
	"github.com/nodenet/nodenet/routerd/internal/model"
	"github.com/nodenet/nodenet/routerd/internal/podnet"
	"github.com/nodenet/nodenet/routerd/internal/routes"
	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
)

// routerd cleanup, run in a node's namespace, removes its routes, its
// masquerade table and its CNI config, and leaves the bridge and every
// route of somebody else.
func TestCleanupRemovesOnlyWhatRouterdOwns(t *testing.T) {
	netnstest.RequireRoot(t, "programs routes and nftables in a network namespace of its own")
	node, peer := netnstest.New(t), netnstest.New(t)
	netnstest.Veth(t, netnstest.End{NS: node, Name: "eth0", Addrs: []string{"198.18.0.10/24"}},
		netnstest.End{NS: peer, Name: "eth0", Addrs: []string{"198.18.0.11/24"}})
	h := netnstest.Handle(t, node)

	cfg := controller.DefaultConfig()
	cfg.CNIConfDir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	rt := routes.New(routes.Config{NetNS: int(node), Protocol: cfg.RouteProtocol})
	defer func() { _ = rt.Close() }()
	ours := model.Route{Prefix: netip.MustParsePrefix("198.18.129.0/24"), NextHop: netip.MustParseAddr("198.18.0.11")}
	if _, err := rt.Apply(routes.Desired{Routes: []model.Route{ours}}); err != nil {
		t.Fatal(err)
	}
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	_, foreignDst, _ := net.ParseCIDR("198.18.130.0/24")
	foreign := &netlink.Route{LinkIndex: eth0.Attrs().Index, Dst: foreignDst, Gw: netip.MustParseAddr("198.18.0.11").AsSlice(), Protocol: 4}
	if err := h.RouteAdd(foreign); err != nil {
		t.Fatal(err)
	}
	table := egress.New(egress.Config{NetNS: int(node)})
	defer func() { _ = table.Close() }()
	if _, err := table.Apply(egress.Desired{PodCIDRs: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/24")},
		NoMasquerade: []netip.Prefix{netip.MustParsePrefix("198.18.128.0/17")}}); err != nil {
		t.Fatal(err)
	}
	gw := netip.MustParsePrefix("198.18.128.1/24")
	if _, err := podnet.EnsureBridge(h, podnet.BridgeSpec{Name: cfg.Bridge, MTU: 1500, Gateways: []netip.Prefix{gw}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.CNIConfDir, cfg.CNIConfFile), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(cfg.CNIConfDir, "05-other.conflist")
	if err := os.WriteFile(other, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := netnstest.InNetns(node, func() error { return cleanup(zap.NewNop(), cfg) }); err != nil {
		t.Fatal(err)
	}

	if left, err := rt.Installed(); err != nil || len(left) != 0 {
		t.Errorf("routerd's routes after cleanup: %v %v", left, err)
	}
	all, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range all {
		if r.Dst != nil && r.Dst.String() == "198.18.130.0/24" {
			found = true
		}
	}
	if !found {
		t.Error("cleanup removed a route of somebody else")
	}
	c, err := nftutil.Dial(nftutil.ConnConfig{NetNS: int(node)})
	if err != nil {
		t.Fatal(err)
	}
	if tbl, err := nftutil.FindTable(c, egress.TableName, nftables.TableFamilyINet); err != nil || tbl != nil {
		t.Errorf("masquerade table after cleanup: %v %v", tbl, err)
	}
	if _, err := os.Stat(filepath.Join(cfg.CNIConfDir, cfg.CNIConfFile)); !os.IsNotExist(err) {
		t.Errorf("routerd's CNI config after cleanup: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another CNI config was removed: %v", err)
	}
	if _, err := h.LinkByName(cfg.Bridge); err != nil {
		t.Errorf("the bridge was removed (pods may still use it): %v", err)
	}
}
