//go:build kernel && vm

package nft

// Traffic that IPVS on the node forwards to a local pod is policed. IPVS
// takes a connection to a virtual service at LOCAL_IN, rewrites its
// destination to the real server (masquerading) and sends it on through
// LOCAL_OUT, with the client's source address: it never meets the forward
// hook, so only the table's output chain can police it. The host kernel
// has no IPVS; Debian's kernel in the VM has:
//
//	make vmexec vm-assets
//	go test -tags kernel,vm -exec $PWD/_output/bin/vmexec -run IPVS ./firewalld/internal/nft/
//
// Address plan (namespaces of this test; every veth of its own, routed):
//
//	node  lo 198.19.0.10/32 (the VIP, local as kube-proxy's kube-ipvs0
//	      makes it), IPVS 198.19.0.10:80/TCP rr → 198.18.128.10:80 (masq);
//	      n-pod 198.18.129.1/32, n-c1 and n-c2 198.18.0.1/32
//	pod   eth0 198.18.128.10/32, serves TCP 80 (the node's pod CIDR is
//	      198.18.128.0/24)
//	c1    eth0 198.18.0.20/32, allowed by the pod's policy
//	c2    eth0 198.18.0.21/32, not

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
)

var (
	ipvsVIP     = addr("198.19.0.10")
	ipvsPod     = addr("198.18.128.10")
	ipvsClient1 = addr("198.18.0.20")
	ipvsClient2 = addr("198.18.0.21")
)

const (
	ipvsGroup   model.ID = 0x00000c0c // the pod's ingress group
	ipvsPeerC1  model.ID = 0x000003c1 // client 1
	ipvsPeerC2  model.ID = 0x000003c2 // client 2
	ipvsPort             = 80
	ipvsPodName          = "pod"
)

var ipvsIn = model.GroupKey{Direction: model.Ingress, ID: ipvsGroup}

func TestKernelIPVSToLocalPodPoliced(t *testing.T) {
	node, pod, c1, c2 := netnstest.New(t), netnstest.New(t), netnstest.New(t), netnstest.New(t)
	ipvsc := openIPVS(t, node)
	sysctl(t, node, "net.ipv4.ip_forward", "1")
	sysctl(t, node, "net.ipv4.vs.conntrack", "1")

	netnstest.Veth(t, netnstest.End{NS: node, Name: "n-pod", Addrs: []string{"198.18.129.1/32"}},
		netnstest.End{NS: pod, Name: "eth0", Addrs: []string{ipvsPod.String() + "/32"}})
	route(t, pod, "198.18.129.1/32", "eth0", netip.Addr{})
	route(t, pod, "0.0.0.0/0", "eth0", gateway)
	route(t, node, ipvsPod.String()+"/32", "n-pod", netip.Addr{})
	for _, c := range []struct {
		ns  netns.NsHandle
		dev string
		a   netip.Addr
	}{{c1, "n-c1", ipvsClient1}, {c2, "n-c2", ipvsClient2}} {
		netnstest.Veth(t, netnstest.End{NS: node, Name: c.dev, Addrs: []string{nodeExt.String() + "/32"}},
			netnstest.End{NS: c.ns, Name: "eth0", Addrs: []string{c.a.String() + "/32"}})
		route(t, c.ns, nodeExt.String()+"/32", "eth0", netip.Addr{})
		route(t, c.ns, "0.0.0.0/0", "eth0", nodeExt)
		route(t, node, c.a.String()+"/32", c.dev, netip.Addr{})
	}
	netnstest.LinkUp(t, netnstest.Handle(t, node), "lo", ipvsVIP.String()+"/32")
	serveEcho(t, pod, ipvsPodName, []uint16{ipvsPort}, nil)

	svc := ipvs.Service{Address: ipvsVIP, Netmask: netmask.MaskFrom(32, 32), Port: ipvsPort,
		Protocol: ipvs.TCP, Family: ipvs.INET, Scheduler: "rr"}
	if err := ipvsc.CreateService(svc); err != nil {
		t.Fatalf("virtual service %v:%d: %v", ipvsVIP, ipvsPort, err)
	}
	if err := ipvsc.CreateDestination(svc, ipvs.Destination{Address: ipvsPod, Port: ipvsPort,
		Family: ipvs.INET, FwdMethod: ipvs.Masquerade, Weight: 1}); err != nil {
		t.Fatalf("real server %v:%d: %v", ipvsPod, ipvsPort, err)
	}

	// The pod isolated for ingress, client 1 allowed on TCP 80.
	d := model.NewDatapath()
	d.LocalCIDRs = []netip.Prefix{netip.MustParsePrefix("198.18.128.0/24")}
	d.KnownLocal[ipvsPod] = struct{}{}
	d.IngressGroup[ipvsPod] = ipvsGroup
	d.Chains[ipvsIn] = []model.Rule{{Peer: ipvsPeerC1, Ports: tcp(ipvsPort)}}
	d.PeerElems[model.PeerElem{Peer: ipvsPeerC1, From: ipvsClient1, To: ipvsClient1}] = struct{}{}
	tb := New(Config{NetNS: int(node)})
	mustApply(t, tb, d)

	// Judge sees the packet as the output hook does: client → pod.
	viaVIP := func(from netns.NsHandle, src netip.Addr) attempt {
		vip := netip.AddrPortFrom(ipvsVIP, ipvsPort)
		return attempt{what: fmt.Sprintf("tcp %v → %v (IPVS → %v)", src, vip, ipvsPod), src: src, dst: ipvsPod, proto: protoTCP, port: ipvsPort,
			try: func(timeout time.Duration) (string, error) { return askTCP(from, src, vip, timeout) }}
	}
	direct := func(from netns.NsHandle, src netip.Addr) attempt {
		dst := netip.AddrPortFrom(ipvsPod, ipvsPort)
		return attempt{what: fmt.Sprintf("tcp %v → %v", src, dst), src: src, dst: ipvsPod, proto: protoTCP, port: ipvsPort,
			try: func(timeout time.Duration) (string, error) { return askTCP(from, src, dst, timeout) }}
	}

	t.Run("through the VIP: the allowed client passes, the other is dropped in output", func(t *testing.T) {
		expectAttempt(t, tb, d, viaVIP(c1, ipvsClient1), model.Allowed)
		expectAttempt(t, tb, d, viaVIP(c2, ipvsClient2), model.DeniedIngress)
		// IPVS did schedule client 2's connection to the pod (the drop is
		// the table's, after IPVS): its connection entry is there.
		conns := ipvsConns(t, node)
		if !hasIPVSConn(conns, ipvsClient2, ipvsVIP, ipvsPod) {
			t.Fatalf("no IPVS connection %v → %v → %v:\n%s", ipvsClient2, ipvsVIP, ipvsPod, conns)
		}
		t.Logf("IPVS connections:\n%s", conns)
	})

	t.Run("directly to the pod: the same, in forward", func(t *testing.T) {
		expectAttempt(t, tb, d, direct(c1, ipvsClient1), model.Allowed)
		expectAttempt(t, tb, d, direct(c2, ipvsClient2), model.DeniedIngress)
	})

	t.Run("the node's own connection to the VIP passes", func(t *testing.T) {
		// The node is no peer of the pod's policy: its traffic passes
		// the output chain's "the node's own traffic" rule, which Judge
		// (the pods chain) does not model.
		answer, err := askTCP(node, netip.Addr{}, netip.AddrPortFrom(ipvsVIP, ipvsPort), answerTimeout)
		if err != nil || !strings.HasPrefix(answer, ipvsPodName+" ") {
			t.Fatalf("node → %v: %q, %v; want the pod's answer", ipvsVIP, answer, err)
		}
		t.Logf("node → %v: answered %q", ipvsVIP, answer)
	})

	t.Run("client 2 allowed too: it passes through the VIP", func(t *testing.T) {
		d.Chains[ipvsIn] = append(d.Chains[ipvsIn], model.Rule{Peer: ipvsPeerC2, Ports: tcp(ipvsPort)})
		d.PeerElems[model.PeerElem{Peer: ipvsPeerC2, From: ipvsClient2, To: ipvsClient2}] = struct{}{}
		mustApply(t, tb, d)
		expectAttempt(t, tb, d, viaVIP(c2, ipvsClient2), model.Allowed)
		expectAttempt(t, tb, d, viaVIP(c1, ipvsClient1), model.Allowed)
	})
}

// openIPVS opens IPVS in ns, skipping the test on a kernel without IPVS
// (the host; the VM has it); closed with the test.
func openIPVS(t *testing.T, ns netns.NsHandle) ipvs.Client {
	t.Helper()
	var c ipvs.Client
	err := netnstest.InNetns(ns, func() (err error) {
		if c, err = ipvs.New(); err != nil { // the netlink socket stays in ns
			return err
		}
		_, err = c.Info()
		return err
	})
	if err != nil {
		if c != nil {
			closeIPVS(c)
		}
		t.Skipf("this kernel has no IPVS (%v); the VM has: make vmexec vm-assets && go test -tags kernel,vm -exec $PWD/_output/bin/vmexec ./firewalld/internal/nft/", err)
	}
	t.Cleanup(func() { closeIPVS(c) })
	return c
}

func closeIPVS(c ipvs.Client) {
	if cl, ok := c.(io.Closer); ok {
		_ = cl.Close()
	}
}

// ipvsConns is ns's IPVS connection table (/proc/net/ip_vs_conn, as seen
// from a thread in ns).
func ipvsConns(t *testing.T, ns netns.NsHandle) []byte {
	t.Helper()
	var b []byte
	if err := netnstest.InNetns(ns, func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/ip_vs_conn")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return b
}

// hasIPVSConn reports whether the table (addresses in hex) holds a TCP
// connection from client to vip scheduled to dest.
func hasIPVSConn(table []byte, client, vip, dest netip.Addr) bool {
	hex := func(a netip.Addr) string { b := a.As4(); return fmt.Sprintf("%08X", binary.BigEndian.Uint32(b[:])) }
	s := bufio.NewScanner(bytes.NewReader(table))
	for s.Scan() {
		// Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires ...
		f := strings.Fields(s.Text())
		if len(f) >= 7 && f[0] == "TCP" && f[1] == hex(client) && f[3] == hex(vip) && f[5] == hex(dest) {
			return true
		}
	}
	return false
}
