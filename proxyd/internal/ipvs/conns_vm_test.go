//go:build vm

package ipvs

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// Under TCG the guest runs Go many times slower than the host: generous
// bounds, which a passing run never waits for.
const (
	dialTimeout  = 20 * time.Second
	connsTimeout = 30 * time.Second
)

// The topology of TestKernelConnectionCounts:
//
//	lb:  vip0 (dummy) 198.19.0.10/32, IPVS 198.19.0.10:80/TCP (NAT)
//	     lb-srv 198.18.0.1/24 ── srv: eth0 198.18.0.2/24, echo on :8080
//
// The client is a socket of the test in lb: locally originated traffic to
// the VIP, which IPVS schedules at LOCAL_OUT, as on a node.
var (
	connVIP  = vsKey("198.19.0.10", 80, model.TCP)
	connDest = destKey("198.18.0.2", 8080)
)

func TestKernelConnectionCounts(t *testing.T) {
	k, lb := newKernel(t)
	srv := netnstest.New(t)
	topology(t, lb, srv)
	echo(t, srv, connDest.String())

	mustOK(t, k.CreateService(Service{VSKey: connVIP, Scheduler: "rr"}))
	mustOK(t, k.CreateDest(connVIP, Dest{DestKey: connDest, Weight: 1}))

	conn := dialVIP(t, lb)
	roundTrip(t, conn, "one")
	waitConns(t, k, "an established connection counts as active", 1, 0)

	// Draining: weight 0 sends no new connections there, the open one
	// keeps working and keeps counting.
	mustOK(t, k.UpdateDest(connVIP, Dest{DestKey: connDest, Weight: 0}))
	roundTrip(t, conn, "two")
	if c, err := dialVIPErr(lb); err == nil {
		_ = c.Close()
		t.Fatal("a new connection to the VIP succeeded with the only real server at weight 0")
	}
	got, err := k.ListDests(connVIP)
	mustOK(t, err)
	if len(got) != 1 || got[0].Weight != 0 || got[0].ActiveConns != 1 {
		t.Fatalf("draining real server: %+v; want weight 0 with 1 active connection", got)
	}

	// Closed, the connection lingers in IPVS's FIN/TIME_WAIT states as
	// inactive: what a drain waits for before deleting the real server.
	mustOK(t, conn.Close())
	waitConns(t, k, "a closed connection counts as inactive", 0, 1)
	entries := mustList(t, k)
	if len(entries) != 1 || len(entries[0].Dests) != 1 || entries[0].Dests[0].InactiveConns != 1 {
		t.Fatalf("List after close:\n%s\nwant the real server with 1 inactive connection", dump(entries))
	}
}

// waitConns polls the real server's connection counts: the kernel updates
// them with each connection's state, but the test does not know when the
// last packet of a close has been seen.
func waitConns(t *testing.T, k *Kernel, what string, active, inactive uint32) {
	t.Helper()
	netnstest.WaitFor(t, connsTimeout, pollInterval, what, func() (bool, string) {
		ds, err := k.ListDests(connVIP)
		if err != nil {
			return false, err.Error()
		}
		if len(ds) != 1 {
			return false, fmt.Sprintf("real servers %+v", ds)
		}
		d := ds[0]
		return d.ActiveConns == active && d.InactiveConns == inactive,
			fmt.Sprintf("active %d, inactive %d (want %d, %d)", d.ActiveConns, d.InactiveConns, active, inactive)
	})
}

func topology(t *testing.T, lb, srv netns.NsHandle) {
	t.Helper()
	netnstest.Veth(t, netnstest.End{NS: lb, Name: "lb-srv", Addrs: []string{"198.18.0.1/24"}},
		netnstest.End{NS: srv, Name: "eth0", Addrs: []string{"198.18.0.2/24"}})
	hl := netnstest.Handle(t, lb)
	if err := hl.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "vip0"}}); err != nil {
		t.Fatalf("dummy vip0: %v", err)
	}
	netnstest.LinkUp(t, hl, "vip0", connVIP.Addr.String()+"/32")
	// Replies to the client (whose source is the VIP) go back through lb,
	// where IPVS reverses the NAT.
	if err := netnstest.Handle(t, srv).RouteAdd(&netlink.Route{Gw: net.ParseIP("198.18.0.1")}); err != nil {
		t.Fatalf("default route in srv: %v", err)
	}
}

// echo serves TCP echo on addr in ns until the test ends.
func echo(t *testing.T, ns netns.NsHandle, addr string) {
	t.Helper()
	var ln net.Listener
	mustOK(t, netnstest.InNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}))
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
}

func dialVIPErr(lb netns.NsHandle) (net.Conn, error) {
	var c net.Conn
	err := netnstest.InNetns(lb, func() (err error) {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		defer cancel()
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", connVIP.Addr, connVIP.Port))
		return err
	})
	return c, err
}

func dialVIP(t *testing.T, lb netns.NsHandle) net.Conn {
	t.Helper()
	c, err := dialVIPErr(lb)
	if err != nil {
		t.Fatalf("connect to the VIP: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// roundTrip proves the connection carries data both ways through IPVS.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	mustOK(t, c.SetDeadline(time.Now().Add(dialTimeout)))
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write %q: %v", msg, err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read the echo of %q: %v", msg, err)
	}
	if string(buf) != msg {
		t.Fatalf("echo %q, want %q", buf, msg)
	}
}
