package controller

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/nodenet/nodenet/routerd/internal/desired"
	"github.com/spf13/pflag"
)

// Config is routerd's own configuration (flags and NODENET_* variables).
type Config struct {
	// BGP.
	ASN             uint32
	BGPPort         uint16
	FullMesh        bool
	Peers           []string // PeerSpec entries (--peer, repeated)
	GracefulRestart time.Duration
	// InitialSyncTimeout bounds how long a (re)started routerd keeps the
	// routes it found in the kernel while its peers send theirs.
	InitialSyncTimeout time.Duration
	// Namespace holds the Secrets with the peers' MD5 passwords.
	Namespace string

	// Routes.
	Tunnel        string
	RouteProtocol uint8
	// MTU of the pod network; 0 takes the MTU of the link with the node
	// IP (minus the tunnel's overhead when tunnels are on).
	MTU int

	// Pod network.
	Bridge      string
	CNIConfDir  string
	CNIConfFile string
	PortMap     bool
	IPAMDataDir string
	// WaitForFirewalld writes the CNI config only once firewalld reports
	// policies in force ("auto": when firewalld is among --peers).
	WaitForFirewalld string

	// Service IPs.
	AdvertiseClusterIP, AdvertiseExternalIP, AdvertiseLoadBalancerIP bool

	// Pod egress.
	Masquerade bool
	// NoMasquerade are destinations besides the cluster's pod CIDRs that
	// pods reach with their own address (the service CIDRs, ...).
	NoMasquerade []string

	peerSpecs    []desired.PeerSpec
	noMasquerade []netip.Prefix
}

// DefaultConfig is the configuration without flags.
func DefaultConfig() *Config {
	return &Config{
		ASN: 64512, BGPPort: 179, FullMesh: true, GracefulRestart: 120 * time.Second, InitialSyncTimeout: 30 * time.Second,
		Namespace: os.Getenv("POD_NAMESPACE"), Tunnel: string(desired.TunnelIPIP), RouteProtocol: 196,
		Bridge: "kube-bridge", CNIConfDir: "/etc/cni/net.d", CNIConfFile: "10-nodenet.conflist", WaitForFirewalld: "auto",
		Masquerade: true,
	}
}

// Flags registers the flags.
func (c *Config) Flags(fs *pflag.FlagSet) {
	fs.Uint32Var(&c.ASN, "asn", c.ASN, "the nodes' AS number (a node's "+desired.AnnotationASN+" annotation overrides it)")
	fs.Uint16Var(&c.BGPPort, "bgp-port", c.BGPPort, "TCP port every node's BGP speaker listens on and dials")
	fs.BoolVar(&c.FullMesh, "full-mesh", c.FullMesh, "peer every node with every other node (nodes that are neither route reflector nor client)")
	fs.StringArrayVar(&c.Peers, "peer", c.Peers, `external BGP peer of every node, "address=IP asn=N [port=N] [password-secret=NAME] [hold-time=90s] [multihop=N]" (repeatable)`)
	fs.DurationVar(&c.GracefulRestart, "graceful-restart", c.GracefulRestart, "how long peers keep this node's routes while routerd restarts (0: graceful restart off)")
	fs.DurationVar(&c.InitialSyncTimeout, "initial-sync-timeout", c.InitialSyncTimeout, "after a start, how long routes found in the kernel are kept while peers send theirs")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "namespace of the Secrets holding BGP passwords (key \""+desired.PasswordKey+"\"); default $POD_NAMESPACE")
	fs.StringVar(&c.Tunnel, "tunnel", c.Tunnel, "how pods of nodes on other subnets are reached: ipip or none")
	fs.Uint8Var(&c.RouteProtocol, "route-protocol", c.RouteProtocol, "route protocol number of the routes routerd owns")
	fs.IntVar(&c.MTU, "mtu", c.MTU, "MTU of the pod network (0: the node IP's link, less the tunnel overhead)")
	fs.StringVar(&c.Bridge, "bridge", c.Bridge, "Linux bridge the pods are attached to")
	fs.StringVar(&c.CNIConfDir, "cni-conf-dir", c.CNIConfDir, "directory of the CNI configuration")
	fs.StringVar(&c.CNIConfFile, "cni-conf-file", c.CNIConfFile, "name of the CNI configuration file routerd writes")
	fs.BoolVar(&c.PortMap, "cni-portmap", c.PortMap, "add the portmap plugin (hostPort) to the CNI configuration")
	fs.StringVar(&c.IPAMDataDir, "ipam-data-dir", c.IPAMDataDir, "host-local IPAM data directory (empty: the plugin's default)")
	fs.StringVar(&c.WaitForFirewalld, "wait-for-firewalld", c.WaitForFirewalld, "write the CNI config only once firewalld has policies in force: auto (when firewalld is a peer), true or false")
	fs.BoolVar(&c.AdvertiseClusterIP, "advertise-cluster-ip", c.AdvertiseClusterIP, "advertise Services' cluster IPs over BGP")
	fs.BoolVar(&c.AdvertiseExternalIP, "advertise-external-ip", c.AdvertiseExternalIP, "advertise Services' external IPs over BGP")
	fs.BoolVar(&c.AdvertiseLoadBalancerIP, "advertise-loadbalancer-ip", c.AdvertiseLoadBalancerIP, "advertise Services' load-balancer IPs over BGP")
	fs.BoolVar(&c.Masquerade, "masquerade", c.Masquerade, "masquerade traffic from pods to destinations outside the cluster's pod CIDRs and --no-masquerade")
	fs.StringSliceVar(&c.NoMasquerade, "no-masquerade", c.NoMasquerade, "CIDRs pods reach without masquerade besides the pod CIDRs (the service CIDRs, ...)")
}

// Validate checks the flags.
func (c *Config) Validate() error {
	var errs []error
	if _, err := desired.ParseASN(fmt.Sprint(c.ASN)); err != nil {
		errs = append(errs, fmt.Errorf("--asn: %w", err))
	}
	if c.BGPPort == 0 {
		errs = append(errs, errors.New("--bgp-port must not be 0"))
	}
	c.peerSpecs = nil
	for _, s := range c.Peers {
		p, err := desired.ParsePeerSpec(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--peer: %w", err))
			continue
		}
		c.peerSpecs = append(c.peerSpecs, p)
	}
	switch desired.TunnelMode(c.Tunnel) {
	case desired.TunnelIPIP, desired.TunnelNone:
	default:
		errs = append(errs, fmt.Errorf("--tunnel %q: ipip or none", c.Tunnel))
	}
	if c.RouteProtocol <= 4 {
		errs = append(errs, fmt.Errorf("--route-protocol %d is one of the kernel's own (0-4)", c.RouteProtocol))
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535) {
		errs = append(errs, fmt.Errorf("--mtu %d out of range", c.MTU))
	}
	if c.Bridge == "" || len(c.Bridge) > 15 || strings.ContainsAny(c.Bridge, "/ ") {
		errs = append(errs, fmt.Errorf("--bridge %q is not a link name", c.Bridge))
	}
	if c.CNIConfFile == "" || strings.Contains(c.CNIConfFile, "/") || !strings.HasSuffix(c.CNIConfFile, ".conflist") {
		errs = append(errs, fmt.Errorf("--cni-conf-file %q: a file name ending in .conflist", c.CNIConfFile))
	}
	switch c.WaitForFirewalld {
	case "auto", "true", "false":
	default:
		errs = append(errs, fmt.Errorf("--wait-for-firewalld %q: auto, true or false", c.WaitForFirewalld))
	}
	c.noMasquerade = nil
	for _, s := range c.NoMasquerade {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--no-masquerade: %w", err))
			continue
		}
		c.noMasquerade = append(c.noMasquerade, p.Masked())
	}
	if c.GracefulRestart < 0 || c.GracefulRestart > 4095*time.Second {
		errs = append(errs, fmt.Errorf("--graceful-restart %v: 0 to 4095s (12 bits of seconds)", c.GracefulRestart))
	}
	return errors.Join(errs...)
}

// advertisesVIPs says whether any service IP is advertised.
func (c *Config) advertisesVIPs() bool {
	return c.AdvertiseClusterIP || c.AdvertiseExternalIP || c.AdvertiseLoadBalancerIP
}
