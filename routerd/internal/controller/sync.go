package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/problems"
	"github.com/nodenet/nodenet/routerd/internal/desired"
	"github.com/nodenet/nodenet/routerd/internal/model"
	"go.uber.org/zap"
)

// ipipOverhead is what an IPIP header takes off the underlay's MTU.
const ipipOverhead = 20

// podNet is the node's pod network as this sync sees it.
type podNet struct {
	cidrs   []netip.Prefix
	source  desired.CIDRSource
	nodeIPs []netip.Addr
	localIP netip.Addr
	// underlayMTU is the node link's; podMTU the pods' (less the
	// tunnel's overhead when tunnels are on).
	underlayMTU, podMTU int
}

func (c *Controller) podNetwork(in input, full bool, ps *[]problems.Problem) (podNet, error) {
	pn := podNet{nodeIPs: desired.NodeIPs(in.node)}
	var fromCNI []netip.Prefix
	var err error
	if len(in.node.Spec.PodCIDRs) == 0 && in.node.Spec.PodCIDR == "" {
		if fromCNI, err = c.k.PodNetwork.CNIPodCIDRs(); err != nil {
			// A broken file of someone else's is no reason to stop.
			c.log.Warn("reading the CNI config directory", zap.Error(err))
		}
	}
	var cps []problems.Problem
	pn.cidrs, pn.source, cps, err = desired.LocalPodCIDRs(in.node, fromCNI)
	*ps = append(*ps, cps...)
	if err != nil {
		return pn, err
	}
	var ok bool
	if pn.localIP, ok = desired.NodeIPv4(in.node); !ok {
		return pn, fmt.Errorf("node %q has no IPv4 address in its status", in.node.Name)
	}
	pn.underlayMTU = c.cfg.MTU
	if c.cfg.MTU == 0 {
		// The link's MTU is read again on full syncs only: route syncs
		// come by the thousand when peers send their tables.
		st := &c.state
		if full || st.linkMTUOf != pn.localIP {
			mtu, err := c.k.PodNetwork.LinkMTU(pn.localIP)
			if err != nil {
				return pn, fmt.Errorf("MTU of the link of %s: %w", pn.localIP, err)
			}
			st.linkMTU, st.linkMTUOf = mtu, pn.localIP
		}
		pn.underlayMTU = st.linkMTU
	}
	pn.podMTU = pn.underlayMTU
	if desired.TunnelMode(c.cfg.Tunnel) == desired.TunnelIPIP && c.cfg.MTU == 0 {
		pn.podMTU -= ipipOverhead
	}
	return pn, nil
}

// syncPodNetwork ensures the bridge and the CNI config. With firewalld on
// the node, the config is written only once firewalld has its policies in
// force: until then the runtime cannot start a pod that no policy protects.
// After a boot an old config is taken away until then, for the same reason.
func (c *Controller) syncPodNetwork(pn podNet, in input, full bool) error {
	st := &c.state
	key := fmt.Sprint(pn.cidrs, pn.podMTU)
	if !full && st.cniWritten && st.podNetKey == key {
		// Written and unchanged: full syncs repair drift.
		return nil
	}
	st.podNetKey = ""
	if _, err := c.k.PodNetwork.EnsureBridge(pn.cidrs, pn.podMTU); err != nil {
		return fmt.Errorf("bridge %s: %w", c.cfg.Bridge, err)
	}
	if in.waitFW && !in.fwInForce && !st.cniWritten {
		st.waitingFW = true
		if st.booted {
			if err := c.k.PodNetwork.RemoveCNIConfig(); err != nil {
				return fmt.Errorf("remove the CNI config until firewalld is in force: %w", err)
			}
		}
		return nil
	}
	st.waitingFW = false
	if _, err := c.k.PodNetwork.WriteCNIConfig(pn.cidrs, pn.podMTU); err != nil {
		return fmt.Errorf("write the CNI config: %w", err)
	}
	st.cniWritten, st.podNetKey = true, key
	return nil
}

// syncBGP configures the speaker; it returns whether BGP is ready (the
// speaker runs and the peers have sent their initial routes).
func (c *Controller) syncBGP(ctx context.Context, in input, pn podNet, full bool, ps *[]problems.Problem) (bool, error) {
	pr, err := desired.Peers(desired.PeersInput{Node: in.node.Name, Nodes: in.nodes, ASN: c.cfg.ASN, FullMesh: c.cfg.FullMesh,
		NodePort: c.cfg.BGPPort, Peers: c.cfg.peerSpecs, Passwords: in.passwords})
	*ps = append(*ps, pr.Problems...)
	if err != nil {
		return false, err
	}
	g := pr.Global
	g.ListenPort = int32(c.cfg.BGPPort)
	g.GracefulRestart = c.cfg.GracefulRestart
	st := &c.state
	if !st.started || !sameGlobal(st.global, g) {
		if err := c.k.Speaker.Start(ctx, g); err != nil {
			return false, fmt.Errorf("start the BGP speaker: %w", err)
		}
		st.global, st.started, st.startedAt = g, true, c.now()
		st.initialDone = false
		// The sync that ends the initial sync at the latest.
		time.AfterFunc(c.cfg.InitialSyncTimeout, c.deps.Trigger)
	}
	adverts, aps := desired.Advertisements(desired.AdvertInput{PodCIDRs: pn.cidrs,
		ClusterIPs: c.cfg.AdvertiseClusterIP, ExternalIPs: c.cfg.AdvertiseExternalIP, LoadBalancerIPs: c.cfg.AdvertiseLoadBalancerIP,
		UseProxyd: in.useProxyd, ProxydVIPs: in.vips, Services: in.services, Slices: in.slices, Node: in.node.Name})
	*ps = append(*ps, aps...)
	st.view.adverts, st.view.nextHop = adverts, pn.localIP
	// The advertisements before the peers: after a restart, the first
	// End-of-RIB a peer gets must follow every prefix of this node, or the
	// peer withdraws the ones it did not get again (package bgp, graceful
	// restart). Each call skips only its own bad input: both always run.
	var errs []error
	if err := c.k.Speaker.SetAdvertisements(ctx, adverts, pn.localIP); err != nil {
		errs = append(errs, fmt.Errorf("BGP advertisements: %w", err))
	}
	if err := c.k.Speaker.SetPeers(ctx, pr.Peers); err != nil {
		errs = append(errs, fmt.Errorf("BGP peers: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return false, err
	}
	st.counts.peers, st.counts.advertised = uint64(len(pr.Peers)), uint64(len(adverts))
	if st.initialDone && !full {
		// The peers' states are only needed until the initial sync ends;
		// reading them waits in GoBGP's loop behind the updates being
		// taken in (3-29 ms per sync while a peer sends 5k routes). Full
		// syncs refresh the counts; status asks the speaker directly.
		return true, nil
	}
	states, err := c.k.Speaker.Peers(ctx)
	if err != nil {
		return false, fmt.Errorf("BGP peer states: %w", err)
	}
	st.counts.established = 0
	byAddr := map[netip.Addr]model.PeerState{}
	for _, s := range states {
		byAddr[s.Address] = s
		if s.Established() {
			st.counts.established++
		}
	}
	// Every peer has sent its initial routes: its session is up, and it
	// said End-of-RIB when it can (graceful restart negotiated).
	allIn := true
	for _, p := range pr.Peers {
		s, ok := byAddr[p.Address]
		if !ok || !s.Established() || (s.GracefulRestart && !s.EndOfRIB) {
			allIn = false
		}
	}
	if !st.initialDone && (allIn || c.now().Sub(st.startedAt) >= c.cfg.InitialSyncTimeout) {
		st.initialDone = true
		c.log.Info("initial BGP sync done: routes found at start no longer kept", zap.Bool("allPeersIn", allIn))
	}
	return st.initialDone, nil
}

func sameGlobal(a, b model.Global) bool {
	return a.RouterID == b.RouterID && a.ASN == b.ASN && a.ListenPort == b.ListenPort && a.ClusterID == b.ClusterID &&
		a.GracefulRestart == b.GracefulRestart && a.IPv6 == b.IPv6 && slices.Equal(a.ListenAddresses, b.ListenAddresses)
}

// syncRoutes installs the learned paths. Until the initial BGP sync is
// done, the routes found in the kernel at start stay beside them: after a
// restart the peers' routes arrive over a few seconds, and a route removed
// and added again in between would cut the pods' connections.
func (c *Controller) syncRoutes(in input, pn podNet, full bool) error {
	st := &c.state
	if full || st.subnetsOf != pn.localIP || !slices.ContainsFunc(st.subnets, func(s model.Subnet) bool { return s.Prefix.Contains(pn.localIP) }) {
		// Read again on full syncs, and when the node's address moved or
		// is on none of them yet: route syncs come by the thousand when
		// peers send their tables.
		subnets, err := c.k.PodNetwork.Subnets()
		if err != nil {
			return fmt.Errorf("the node's subnets: %w", err)
		}
		st.subnets, st.subnetsOf = subnets, pn.localIP
	}
	subnets := make([]netip.Prefix, len(st.subnets))
	for i, s := range st.subnets {
		subnets[i] = s.Prefix
	}
	paths := c.k.Speaker.Paths()
	rr := desired.Routes(desired.RoutesInput{Paths: paths, Nodes: in.nodes, Node: in.node.Name, LocalIP: pn.localIP,
		OwnPrefixes: pn.cidrs, Subnets: subnets, Tunnel: desired.TunnelMode(c.cfg.Tunnel), MTU: pn.underlayMTU})
	routes, tunnels := rr.Routes, rr.Tunnels
	if !st.initialDone {
		routes, tunnels = keepAdopted(routes, tunnels, st.adopted, pn)
	} else {
		st.adopted = nil
	}
	st.view.paths, st.view.routes, st.view.kept, st.view.subnets = paths, rr, routes[len(rr.Routes):], st.subnets
	n, err := c.k.Routes.Apply(routes, tunnels, full)
	st.counts.routeWrites += uint64(n)
	st.counts.routes, st.counts.tunnels, st.counts.skipped = uint64(len(routes)), uint64(len(tunnels)), uint64(len(rr.Skipped))
	if err != nil {
		return fmt.Errorf("routes: %w", err)
	}
	return nil
}

// keepAdopted adds the adopted routes whose prefix has no route yet, and
// the tunnels they go through.
func keepAdopted(routes []model.Route, tunnels []model.Tunnel, adopted []model.Route, pn podNet) ([]model.Route, []model.Tunnel) {
	have := map[netip.Prefix]bool{}
	for _, r := range routes {
		have[r.Prefix] = true
	}
	tun := map[string]bool{}
	for _, t := range tunnels {
		tun[t.Name] = true
	}
	for _, r := range adopted {
		if have[r.Prefix] {
			continue
		}
		routes = append(routes, r)
		if r.Tunnel != "" && !tun[r.Tunnel] && r.NextHop.Is4() {
			tun[r.Tunnel] = true
			tunnels = append(tunnels, model.Tunnel{Name: r.Tunnel, Local: pn.localIP, Remote: r.NextHop, MTU: pn.underlayMTU - ipipOverhead})
		}
	}
	return routes, tunnels
}

// syncMasquerade applies the pod egress masquerade: traffic from this
// node's pods to anything but the cluster's pod CIDRs and --no-masquerade.
func (c *Controller) syncMasquerade(in input, pn podNet, full bool) error {
	var pods, keep []netip.Prefix
	if c.cfg.Masquerade {
		pods = pn.cidrs
		keep = slices.Clone(c.cfg.noMasquerade)
		for _, n := range in.nodes {
			cidrs, _ := desired.PodCIDRs(n)
			keep = append(keep, cidrs...)
		}
		keep = append(keep, pn.cidrs...)
	}
	n, err := c.k.Masquerade.Apply(pods, keep, full)
	c.state.counts.masqueradeWrites += uint64(n)
	if err != nil {
		return fmt.Errorf("pod egress masquerade: %w", err)
	}
	return nil
}

// publish tells the other daemons the pod network.
func (c *Controller) publish(pn podNet, bgpReady bool) {
	msg := &nodev1.PodNetwork{BridgeName: c.cfg.Bridge, Mtu: uint32(pn.podMTU), BgpReady: bgpReady}
	for _, p := range pn.cidrs {
		msg.PodCidrs = append(msg.PodCidrs, p.String())
	}
	for _, ip := range pn.nodeIPs {
		msg.NodeIps = append(msg.NodeIps, ip.String())
	}
	switch pn.source {
	case desired.FromNodeSpec:
		msg.CidrSource = nodev1.PodCIDRSource_POD_CIDR_SOURCE_NODE_SPEC
	case desired.FromCNIConfig:
		msg.CidrSource = nodev1.PodCIDRSource_POD_CIDR_SOURCE_CNI_CONFIG
	}
	c.deps.Publisher.SetPodNetwork(msg)
}
