//go:build kernel

package nft

// Real packets through firewalld's table on the host kernel. A "node"
// namespace routes between pod namespaces and a client outside (no
// bridge: every pod has a veth of its own, as routed CNIs do), and its
// table decides. Every probe is also judged by model.Datapath.Judge, the
// rules written over the Datapath: the kernel is held to it.
//
// Address plan (all in namespaces of this test):
//
//	node  n-ext 198.18.0.1/24; n-a, n-b 198.18.129.1/32 (the pods' gateway)
//	ext   eth0 198.18.0.2/24 (a client outside the pod network, in the
//	      ipBlock 198.18.0.0/24), 198.18.140.7/32 (a pod of another node)
//	      serves TCP 9000
//	podA  eth0 198.18.128.2/32, serves TCP 8080, 8081 and UDP 5353
//	podB  eth0 198.18.128.3/32 and 198.18.128.99/32 (an address firewalld
//	      does not know), serves TCP 8080
//
// The node's pod CIDR is 198.18.128.0/24.

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
)

// Timeouts: an answer that should come is waited for long (never reached
// by a passing run); one that should not is given a short deadline, the
// drop itself being proven by the deny chain's counter.
const (
	answerTimeout = 10 * time.Second
	dropTimeout   = 300 * time.Millisecond
)

var (
	nodeExt   = addr("198.18.0.1")
	gateway   = addr("198.18.129.1")
	client    = addr("198.18.0.2")
	remotePod = addr("198.18.140.7")
	podA      = addr("198.18.128.2")
	podB      = addr("198.18.128.3")
	unknown   = addr("198.18.128.99")
)

// Groups and peers of the traffic test.
const (
	groupA   model.ID = 0x00000a0a
	groupB   model.ID = 0x00000b0b
	peerA    model.ID = 0x000001aa // podA
	peerB    model.ID = 0x000001bb // podB
	peerPod  model.ID = 0x000001cc // the remote pod
	peerExt  model.ID = 0x000002ee // ipBlock 198.18.0.0/24
	portWeb           = 8080
	portAlt           = 8081
	portDNS           = 5353
	portExt           = 9000
	protoTCP          = model.ProtoTCP
	protoUDP          = model.ProtoUDP
)

var (
	inA  = model.GroupKey{Direction: model.Ingress, ID: groupA}
	outB = model.GroupKey{Direction: model.Egress, ID: groupB}
)

type topology struct {
	node, ext, podA, podB netns.NsHandle
}

func newTopology(t *testing.T) *topology {
	t.Helper()
	tp := &topology{node: netnstest.New(t), ext: netnstest.New(t), podA: netnstest.New(t), podB: netnstest.New(t)}
	sysctl(t, tp.node, "net.ipv4.ip_forward", "1")

	netnstest.Veth(t, netnstest.End{NS: tp.node, Name: "n-ext", Addrs: []string{"198.18.0.1/24"}},
		netnstest.End{NS: tp.ext, Name: "eth0", Addrs: []string{"198.18.0.2/24", "198.18.140.7/32"}})
	route(t, tp.ext, "0.0.0.0/0", "eth0", nodeExt)
	route(t, tp.node, "198.18.140.0/24", "n-ext", client)

	for _, p := range []struct {
		ns    netns.NsHandle
		dev   string
		addrs []netip.Addr
	}{{tp.podA, "n-a", []netip.Addr{podA}}, {tp.podB, "n-b", []netip.Addr{podB, unknown}}} {
		var cidrs []string
		for _, a := range p.addrs {
			cidrs = append(cidrs, a.String()+"/32")
		}
		netnstest.Veth(t, netnstest.End{NS: tp.node, Name: p.dev, Addrs: []string{"198.18.129.1/32"}},
			netnstest.End{NS: p.ns, Name: "eth0", Addrs: cidrs})
		route(t, p.ns, "198.18.129.1/32", "eth0", netip.Addr{})
		route(t, p.ns, "0.0.0.0/0", "eth0", gateway)
		for _, a := range p.addrs {
			route(t, tp.node, a.String()+"/32", p.dev, netip.Addr{})
		}
	}
	serveEcho(t, tp.ext, "ext", []uint16{portExt}, nil)
	serveEcho(t, tp.podA, "podA", []uint16{portWeb, portAlt}, []uint16{portDNS})
	serveEcho(t, tp.podB, "podB", []uint16{portWeb}, nil)
	return tp
}

// baseTraffic is the Datapath the test starts from: podA isolated for
// ingress with nothing allowed, podB not isolated.
func baseTraffic() *model.Datapath {
	d := model.NewDatapath()
	d.LocalCIDRs = []netip.Prefix{netip.MustParsePrefix("198.18.128.0/24")}
	d.KnownLocal[podA] = struct{}{}
	d.KnownLocal[podB] = struct{}{}
	d.IngressGroup[podA] = groupA
	d.Chains[inA] = []model.Rule{}
	for _, e := range []model.PeerElem{
		{Peer: peerA, From: podA, To: podA},
		{Peer: peerB, From: podB, To: podB},
		{Peer: peerPod, From: remotePod, To: remotePod},
		block(peerExt, "198.18.0.0", "198.18.0.255"),
	} {
		d.PeerElems[e] = struct{}{}
	}
	return d
}

// probe is one connection attempt.
type probe struct {
	from  netns.NsHandle
	src   netip.Addr
	dst   netip.Addr
	proto uint8
	port  uint16
}

func (p probe) String() string {
	proto := "tcp"
	if p.proto == protoUDP {
		proto = "udp"
	}
	return fmt.Sprintf("%s %v → %v:%d", proto, p.src, p.dst, p.port)
}

func (p probe) try(timeout time.Duration) (string, error) {
	dst := netip.AddrPortFrom(p.dst, p.port)
	if p.proto == protoUDP {
		return askUDP(p.from, p.src, dst, timeout)
	}
	return askTCP(p.from, p.src, dst, timeout)
}

// expect checks that p gets through exactly when d.Judge says so (want),
// and, for a drop in the table, that the counter of the chain that
// should drop it counted it.
func expect(t *testing.T, tb *Table, d *model.Datapath, p probe, want model.Verdict) {
	t.Helper()
	if got := d.Judge(p.src, p.dst, p.proto, p.port); got != want {
		t.Fatalf("%v: Judge says %v, the test expects %v", p, got, want)
	}
	before := counters(t, tb)
	timeout := answerTimeout
	if want != model.Allowed {
		timeout = dropTimeout
	}
	answer, err := p.try(timeout)
	switch {
	case want == model.Allowed && err != nil:
		t.Fatalf("%v: %v, want an answer (%v)", p, err, want)
	case want == model.Allowed:
		if !strings.HasSuffix(answer, " "+p.src.String()) {
			t.Fatalf("%v: answer %q, want the server to see %v", p, answer, p.src)
		}
		return
	case err == nil:
		t.Fatalf("%v: answered %q, want %v", p, answer, want)
	}
	after := counters(t, tb)
	var key model.GroupKey
	var b, a Counter
	switch want {
	case model.DeniedPending:
		b, a = before.Pending, after.Pending
	case model.DeniedIngress:
		key = model.GroupKey{Direction: model.Ingress, ID: d.IngressGroup[p.dst]}
		b, a = before.Denied[key], after.Denied[key]
	case model.DeniedEgress:
		key = model.GroupKey{Direction: model.Egress, ID: d.EgressGroup[p.src]}
		b, a = before.Denied[key], after.Denied[key]
	}
	t.Logf("%v: %v counted %d packets", p, want, a.Packets-b.Packets)
	if a.Packets <= b.Packets || a.Bytes <= b.Bytes {
		t.Fatalf("%v: no answer, but the %v counter did not count it (%+v → %+v)", p, want, b, a)
	}
}

func counters(t *testing.T, tb *Table) Counters {
	t.Helper()
	c, err := tb.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// allow appends a rule to group k's chain.
func allow(d *model.Datapath, k model.GroupKey, peer model.ID, ports model.PortRange) {
	d.Chains[k] = append(d.Chains[k], model.Rule{Peer: peer, Ports: ports})
}

func TestKernelTraffic(t *testing.T) {
	tp := newTopology(t)
	cfg := Config{NetNS: int(tp.node), LogGroup: 9, LogRate: 100}
	tb := New(cfg)
	d := baseTraffic()
	mustApply(t, tb, d)
	// Changes go through ApplyDelta, with the delta the compiler would
	// give; every few, through Apply.
	prev, n := d.Clone(), 0
	apply := func(t *testing.T) {
		t.Helper()
		n++
		var err error
		if n%3 == 0 {
			_, err = tb.Apply(d)
		} else {
			_, err = tb.ApplyDelta(d, modelDelta(prev, d))
		}
		if err != nil {
			t.Fatal(err)
		}
		prev = d.Clone()
	}
	tcpPorts := func(from, to uint16) model.PortRange {
		return model.PortRange{ProtoFrom: protoTCP, ProtoTo: protoTCP, PortFrom: from, PortTo: to}
	}

	t.Run("an isolated pod is unreachable, another is", func(t *testing.T) {
		expect(t, tb, d, probe{tp.ext, client, podA, protoTCP, portWeb}, model.DeniedIngress)
		expect(t, tb, d, probe{tp.ext, remotePod, podA, protoTCP, portWeb}, model.DeniedIngress)
		expect(t, tb, d, probe{tp.ext, client, podB, protoTCP, portWeb}, model.Allowed)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoTCP, portWeb}, model.DeniedIngress)
	})

	t.Run("a peer of pods lets exactly its port in", func(t *testing.T) {
		allow(d, inA, peerPod, tcp(portWeb))
		apply(t)
		expect(t, tb, d, probe{tp.ext, remotePod, podA, protoTCP, portWeb}, model.Allowed)
		expect(t, tb, d, probe{tp.ext, remotePod, podA, protoTCP, portAlt}, model.DeniedIngress)
		expect(t, tb, d, probe{tp.ext, client, podA, protoTCP, portWeb}, model.DeniedIngress)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoTCP, portWeb}, model.DeniedIngress)
	})

	t.Run("a pod joins the peer: its address gets in", func(t *testing.T) {
		d.PeerElems[model.PeerElem{Peer: peerPod, From: podB, To: podB}] = struct{}{}
		apply(t)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoTCP, portWeb}, model.Allowed)
		delete(d.PeerElems, model.PeerElem{Peer: peerPod, From: podB, To: podB})
		apply(t)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoTCP, portWeb}, model.DeniedIngress)
	})

	t.Run("an ipBlock lets a non-pod client in", func(t *testing.T) {
		allow(d, inA, peerExt, tcp(portAlt))
		apply(t)
		expect(t, tb, d, probe{tp.ext, client, podA, protoTCP, portAlt}, model.Allowed)
		expect(t, tb, d, probe{tp.ext, client, podA, protoTCP, portWeb}, model.DeniedIngress)
		// The remote pod is not in the block.
		expect(t, tb, d, probe{tp.ext, remotePod, podA, protoTCP, portAlt}, model.DeniedIngress)
	})

	t.Run("a rule without peers lets everyone in on its port", func(t *testing.T) {
		expect(t, tb, d, probe{tp.ext, client, podA, protoUDP, portDNS}, model.DeniedIngress)
		allow(d, inA, model.AnyPeer, udp(portDNS))
		apply(t)
		expect(t, tb, d, probe{tp.ext, client, podA, protoUDP, portDNS}, model.Allowed)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoUDP, portDNS}, model.Allowed)
		expect(t, tb, d, probe{tp.ext, remotePod, podA, protoUDP, portDNS}, model.Allowed)
	})

	t.Run("port ranges and whole protocols", func(t *testing.T) {
		expect(t, tb, d, probe{tp.podB, podB, podA, protoTCP, portAlt}, model.DeniedIngress)
		allow(d, inA, peerB, tcpPorts(portAlt, portAlt+10))
		apply(t)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoTCP, portAlt}, model.Allowed)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoTCP, portWeb}, model.DeniedIngress)
		d.Chains[inA] = d.Chains[inA][:len(d.Chains[inA])-1]
		allow(d, inA, peerB, tcpPorts(0, 65535))
		apply(t)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoTCP, portWeb}, model.Allowed)
		d.Chains[inA] = d.Chains[inA][:len(d.Chains[inA])-1]
		apply(t)
	})

	t.Run("egress isolation in the forward hook", func(t *testing.T) {
		expect(t, tb, d, probe{tp.podB, podB, client, protoTCP, portExt}, model.Allowed)
		d.EgressGroup[podB] = groupB
		d.Chains[outB] = []model.Rule{}
		apply(t)
		expect(t, tb, d, probe{tp.podB, podB, client, protoTCP, portExt}, model.DeniedEgress)
		allow(d, outB, peerExt, tcp(portExt))
		apply(t)
		expect(t, tb, d, probe{tp.podB, podB, client, protoTCP, portExt}, model.Allowed)
		// Egress of B and ingress of A both apply between them.
		expect(t, tb, d, probe{tp.podB, podB, podA, protoUDP, portDNS}, model.DeniedEgress)
		allow(d, outB, peerA, model.AllTraffic)
		apply(t)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoUDP, portDNS}, model.Allowed)
		expect(t, tb, d, probe{tp.podB, podB, podA, protoTCP, portWeb}, model.DeniedIngress)
	})

	t.Run("an unknown address of the pod CIDR is dropped both ways", func(t *testing.T) {
		expect(t, tb, d, probe{tp.ext, client, unknown, protoTCP, portWeb}, model.DeniedPending)
		expect(t, tb, d, probe{tp.podB, unknown, client, protoTCP, portExt}, model.DeniedPending)
		// Once known (and not isolated), it passes.
		d.KnownLocal[unknown] = struct{}{}
		apply(t)
		expect(t, tb, d, probe{tp.ext, client, unknown, protoTCP, portWeb}, model.Allowed)
	})

	t.Run("the node's own traffic passes the output hook", func(t *testing.T) {
		// From the gateway address (the route's source) and from the
		// node's other address: both local, neither allowed by podA's
		// group.
		for _, src := range []netip.Addr{gateway, nodeExt} {
			if answer, err := askTCP(tp.node, src, netip.AddrPortFrom(podA, portWeb), answerTimeout); err != nil || !strings.HasSuffix(answer, " "+src.String()) {
				t.Fatalf("node %v → podA: %q, %v", src, answer, err)
			}
		}
	})

	t.Run("an established connection survives the removal of its rule", func(t *testing.T) {
		s, err := dialTCP(tp.ext, remotePod, netip.AddrPortFrom(podA, portWeb), answerTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		if _, err := s.ask(answerTimeout); err != nil {
			t.Fatal(err)
		}
		rules := []model.Rule{}
		for _, r := range d.Chains[inA] {
			if r.Peer != peerPod {
				rules = append(rules, r)
			}
		}
		d.Chains[inA] = rules
		apply(t)
		if answer, err := s.ask(answerTimeout); err != nil {
			t.Fatalf("the established connection after its rule went: %v", err)
		} else {
			t.Logf("established connection still answered: %q", answer)
		}
		expect(t, tb, d, probe{tp.ext, remotePod, podA, protoTCP, portWeb}, model.DeniedIngress)
	})

	t.Run("counters", func(t *testing.T) {
		// A chain's count starts again when its rules are rewritten:
		// outB's since its last rule came, inA's since the last went
		// (and the probe after it was dropped).
		c := counters(t, tb)
		if c.Denied[inA].Packets == 0 {
			t.Errorf("%v: nothing counted: %+v", inA, c)
		}
		if _, ok := c.Denied[outB]; !ok {
			t.Errorf("%v: no counter: %+v", outB, c)
		}
		if c.Pending.Packets == 0 {
			t.Errorf("pending: nothing counted")
		}
		t.Logf("counters: %+v", c)
		// A restarted firewalld finds the table as it is and writes
		// nothing; the counters are the kernel's.
		if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
			t.Fatalf("restart %+v, want no write", res)
		}
	})
}
