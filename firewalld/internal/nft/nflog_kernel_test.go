//go:build kernel

package nft

// Drop logging: with Config.LogGroup set, a group chain's drops reach
// nflog group LogGroup (nfnetlink_log, per network namespace) with the
// prefix "nodenet deny <in|eg> <group id> ", at most LogRate a second
// with bursts of LogBurst, while every drop is still counted.

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/florianl/go-nflog/v2"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
)

func TestKernelLogDrops(t *testing.T) {
	const (
		logGroup  = 7
		logRate   = 10
		logBurst  = 5
		hammer    = 100  // packets sent within 900 ms
		portFlood = 9999 // the hammer's UDP port (nothing listens)
		nfHookFwd = 2    // NF_INET_FORWARD
	)
	tp := newTopology(t)
	tb := New(Config{NetNS: int(tp.node), LogGroup: logGroup, LogRate: logRate, LogBurst: logBurst})
	d := baseTraffic() // podA isolated for ingress, nothing allowed
	mustApply(t, tb, d)
	logs := listenNflog(t, tp.node, logGroup)
	wantPrefix := "nodenet deny in " + groupA.String() + " "

	t.Run("a drop is logged to the group with the chain's prefix", func(t *testing.T) {
		expect(t, tb, d, probe{tp.ext, client, podA, protoUDP, portDNS}, model.DeniedIngress)
		select {
		case m := <-logs:
			t.Logf("logged: prefix %q, hook %d, %v → %v proto %d dport %d", m.prefix, m.hook, m.src, m.dst, m.proto, m.dport)
			if m.prefix != wantPrefix {
				t.Errorf("prefix %q, want %q", m.prefix, wantPrefix)
			}
			if m.src != client || m.dst != podA || m.proto != protoUDP || m.dport != portDNS {
				t.Errorf("logged packet %v → %v proto %d dport %d, want the probe's %v → %v udp %d", m.src, m.dst, m.proto, m.dport, client, podA, portDNS)
			}
			if m.hook != nfHookFwd {
				t.Errorf("logged at hook %d, want forward (%d)", m.hook, nfHookFwd)
			}
		case <-time.After(answerTimeout):
			t.Fatalf("no nflog message on group %d within %v", logGroup, answerTimeout)
		}
	})

	t.Run("the log is rate limited, the drops all counted", func(t *testing.T) {
		if got := d.Judge(client, podA, protoUDP, portFlood); got != model.DeniedIngress {
			t.Fatalf("Judge says %v, want %v", got, model.DeniedIngress)
		}
		before := counters(t, tb).Denied[inA]
		var c *net.UDPConn
		if err := netnstest.InNetns(tp.ext, func() (err error) {
			c, err = net.DialUDP("udp4", &net.UDPAddr{IP: client.AsSlice()}, net.UDPAddrFromAddrPort(netip.AddrPortFrom(podA, portFlood)))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		// The packets go out over 900 ms, 11 times the log rate: the
		// bucket (logBurst packets, refilled at logRate a second) is
		// emptied at once and then refilled while packets keep coming,
		// so the first second logs more than a burst but at most
		// rate+burst. (All 100 at once would log one burst.)
		// A ticker paces the packets (nothing is waited for).
		pace := time.NewTicker(900 * time.Millisecond / hammer)
		defer pace.Stop()
		start := time.Now()
		for i := range hammer {
			if _, err := c.Write([]byte("flood\n")); err != nil {
				t.Fatal(err)
			}
			if i < hammer-1 {
				<-pace.C
			}
		}
		sent := time.Since(start)
		logged := 0
		window := time.NewTimer(time.Until(start.Add(time.Second)))
		defer window.Stop()
	collect:
		for {
			select {
			case m := <-logs:
				if m.prefix != wantPrefix {
					t.Errorf("prefix %q, want %q", m.prefix, wantPrefix)
				}
				if m.dport == portFlood {
					logged++
				}
			case <-window.C:
				break collect
			}
		}
		dropped := counters(t, tb).Denied[inA].Packets - before.Packets
		t.Logf("%d packets sent in %v: %d dropped (counted), %d logged within the first second (rate %d/s, burst %d)",
			hammer, sent.Round(time.Microsecond), dropped, logged, logRate, logBurst)
		if logged <= logBurst {
			t.Errorf("%d logged within the first second, want more than a burst (%d): the limit refills at %d/s", logged, logBurst, logRate)
		}
		if logged > logRate+logBurst {
			t.Errorf("%d logged within the first second, want at most rate+burst = %d", logged, logRate+logBurst)
		}
		if dropped != hammer {
			t.Errorf("the deny counter counted %d packets, want all %d", dropped, hammer)
		}
	})
}

// logged is one nflog message, with the IPv4 header of its packet.
type logged struct {
	prefix   string
	hook     uint8
	src, dst netip.Addr
	proto    uint8
	dport    uint16
}

// listenNflog binds an nflog socket made inside ns (nflog groups are per
// namespace) to group, each message delivered at once (queue threshold
// 1; the kernel's default batches up to 100 messages or a second), closed
// with the test.
func listenNflog(t *testing.T, ns netns.NsHandle, group uint16) <-chan logged {
	t.Helper()
	var nf *nflog.Nflog
	if err := netnstest.InNetns(ns, func() (err error) {
		nf, err = nflog.Open(&nflog.Config{Group: group, Copymode: nflog.CopyPacket, Bufsize: 128, QThresh: 1})
		return err
	}); err != nil {
		t.Fatalf("nflog: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan logged, 1024)
	errs := make(chan error, 1)
	hook := func(a nflog.Attribute) int {
		var m logged
		if a.Prefix != nil {
			m.prefix = *a.Prefix
		}
		if a.Hook != nil {
			m.hook = *a.Hook
		}
		if a.Payload != nil {
			m.src, m.dst, m.proto, m.dport = parseIPv4(*a.Payload)
		}
		select {
		case out <- m:
		default:
		}
		return 0
	}
	onError := func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		var op interface{ Timeout() bool }
		if errors.As(err, &op) && op.Timeout() {
			return 0
		}
		select {
		case errs <- err:
		default:
		}
		return 1
	}
	if err := nf.RegisterWithErrorFunc(ctx, hook, onError); err != nil {
		cancel()
		_ = nf.Close()
		t.Fatalf("nflog group %d: %v", group, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = nf.Close()
		select {
		case err := <-errs:
			t.Errorf("nflog: %v", err)
		default:
		}
	})
	return out
}

// parseIPv4 reads the addresses, protocol and (TCP, UDP, SCTP)
// destination port of an IPv4 packet.
func parseIPv4(p []byte) (src, dst netip.Addr, proto uint8, dport uint16) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return
	}
	src, dst, proto = netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20])), p[9]
	if ihl := int(p[0]&0x0f) * 4; len(p) >= ihl+4 {
		dport = binary.BigEndian.Uint16(p[ihl+2:])
	}
	return
}
