//go:build kernel

package routing

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/test/netns"
	"golang.org/x/sys/unix"
)

// updateCapture timestamps the TCP segments of a BGP session from one
// address (the announcer) that carry more than a KEEPALIVE (19 bytes), as
// they arrive on a namespace's eth0: an AF_PACKET socket, with the
// kernel's receive timestamps.
type updateCapture struct {
	ns   *netns.NetNS
	from netip.Addr
	f    *os.File
	done chan struct{}

	mu       sync.Mutex
	times    []time.Time
	barriers map[uint16]bool
	err      error
}

// barrierPort is where the barrier datagrams go (discard).
const barrierPort = 9

func captureUpdates(tb testing.TB, ns *netns.NetNS, from netip.Addr) *updateCapture {
	tb.Helper()
	c := &updateCapture{ns: ns, from: from, done: make(chan struct{}), barriers: map[uint16]bool{}}
	// ETH_P_ALL: the taps of one protocol see incoming packets only, and
	// the barrier is an outgoing one.
	proto := int(htons(unix.ETH_P_ALL))
	var fd int
	err := ns.Do(func() error {
		var err error
		// SOCK_DGRAM: the packet without the link header.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index})
		}
		if err == nil {
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		}
		if err == nil {
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
		}
		if err != nil {
			_ = unix.Close(fd)
		}
		return err
	})
	if err != nil {
		tb.Fatalf("%s: AF_PACKET socket on eth0: %v", ns.Name, err)
	}
	c.f = os.NewFile(uintptr(fd), "packet-"+ns.Name) // non-blocking: served by the poller
	tb.Cleanup(c.close)
	go c.read()
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *updateCapture) read() {
	defer close(c.done)
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.fail(err)
		return
	}
	buf := make([]byte, 256) // the headers are enough
	oob := make([]byte, unix.CmsgSpace(16))
	for {
		var n, oobn int
		var from unix.Sockaddr
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, oobn, _, from, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil {
			return // closed
		}
		if rerr != nil {
			c.fail(rerr)
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Protocol != htons(unix.ETH_P_IP) {
			continue
		}
		now := time.Now()
		at := now
		if cms, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, cm := range cms {
				if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SCM_TIMESTAMPNS && len(cm.Data) >= 16 {
					ts := time.Unix(int64(binary.NativeEndian.Uint64(cm.Data)), int64(binary.NativeEndian.Uint64(cm.Data[8:])))
					// A timestamp of another clock (a delivery time)
					// would be far off: then the time read here.
					if d := now.Sub(ts); d >= 0 && d < time.Second {
						at = ts
					}
				}
			}
		}
		c.packet(buf[:n], at)
	}
}

// packet looks at one packet (its headers), if IPv4.
func (c *updateCapture) packet(p []byte, at time.Time) {
	if len(p) < 20 || p[0]>>4 != 4 {
		return
	}
	ihl := int(p[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if len(p) < ihl+8 {
		return
	}
	src := netip.AddrFrom4([4]byte(p[12:16]))
	sport, dport := binary.BigEndian.Uint16(p[ihl:]), binary.BigEndian.Uint16(p[ihl+2:])
	switch {
	case p[9] == unix.IPPROTO_UDP && dport == barrierPort && src != c.from:
		c.mu.Lock()
		c.barriers[sport] = true
		c.mu.Unlock()
	case p[9] == unix.IPPROTO_TCP && src == c.from && (sport == 179 || dport == 179) && len(p) >= ihl+20:
		payload := total - ihl - int(p[ihl+12]>>4)*4
		if payload > 19 {
			c.mu.Lock()
			c.times = append(c.times, at)
			c.mu.Unlock()
		}
	}
}

// barrier sends a datagram out of eth0 to the announcer's discard port
// and waits until the capture has read it: every packet before it has
// been read too.
func (c *updateCapture) barrier(tb testing.TB) {
	tb.Helper()
	var port uint16
	err := c.ns.Do(func() error {
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.from, barrierPort)))
		if err != nil {
			return err
		}
		defer conn.Close()
		port = uint16(conn.LocalAddr().(*net.UDPAddr).Port)
		_, err = conn.Write([]byte("barrier"))
		return err
	})
	if err != nil {
		tb.Fatalf("%s: barrier datagram: %v", c.ns.Name, err)
	}
	netnstest.WaitFor(tb, convergeTimeout, time.Millisecond, c.ns.Name+": the capture's barrier", func() (bool, string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.barriers[port], "not seen yet"
	})
}

func (c *updateCapture) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.times)
}

// since returns the segment times after mark.
func (c *updateCapture) since(mark int) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Time(nil), c.times[mark:]...)
}

func (c *updateCapture) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

func (c *updateCapture) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *updateCapture) close() {
	_ = c.f.Close()
	<-c.done
}
