//go:build kernel

package netns

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// A relay in a node makes a server on the test process's loopback
// reachable from inside the node at the same address, both ways, and Close
// ends the connections it carries.
func TestRelay(t *testing.T) {
	t.Parallel()
	topo := New(t, Options{})
	n := topo.Node(0)

	// The server the node cannot reach by itself: on this process's
	// loopback (a socket; nothing of the namespace's configuration).
	srv, err := net.Listen("tcp4", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, err := bufio.NewReader(c).ReadString('\n')
				if err == nil {
					_, _ = c.Write([]byte("echo " + line))
				}
			}()
		}
	}()

	addr := srv.Addr().String()
	r, err := n.StartRelay(addr, addr, t.Logf)
	must(t, err)
	t.Cleanup(func() { _ = r.Close() })
	if r.Addr().String() != addr {
		t.Fatalf("relay listens on %s, want %s", r.Addr(), addr)
	}

	var c net.Conn
	must(t, n.Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	}))
	defer c.Close()
	must(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write([]byte("hello\n"))
	must(t, err)
	got, err := bufio.NewReader(c).ReadString('\n')
	must(t, err)
	if got != "echo hello\n" {
		t.Fatalf("through the relay: %q, want %q", got, "echo hello\n")
	}

	// An open connection, then Close: the node side sees it end.
	var idle net.Conn
	must(t, n.Do(func() (err error) {
		idle, err = net.DialTimeout("tcp4", addr, 5*time.Second)
		return err
	}))
	defer idle.Close()
	must(t, r.Close())
	must(t, idle.SetReadDeadline(time.Now().Add(5*time.Second)))
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("a relayed connection survived Close")
	}
	if err := n.Do(func() error {
		c, err := net.DialTimeout("tcp4", addr, time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	}); err == nil {
		t.Fatal("the relay still accepts after Close")
	}
}
