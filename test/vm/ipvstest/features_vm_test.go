//go:build vm

package ipvstest

import (
	"net"
	"testing"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The other features the host kernel lacks, each checked in a namespace of
// its own: where IPVS is there (the VM), these must be too.

func TestDummyLink(t *testing.T) {
	requireIPVS(t)
	h := netnstest.Handle(t, netnstest.New(t))
	if err := h.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "dummy0"}}); err != nil {
		t.Fatalf("dummy link: %v", err)
	}
	netnstest.LinkUp(t, h, "dummy0", "198.18.250.1/32")
}

func TestIPIPTunnel(t *testing.T) {
	requireIPVS(t)
	h := netnstest.Handle(t, netnstest.New(t))
	tun := &netlink.Iptun{
		LinkAttrs: netlink.LinkAttrs{Name: "tunl-test"},
		Local:     net.ParseIP("198.18.250.1"),
		Remote:    net.ParseIP("198.18.250.2"),
	}
	if err := h.LinkAdd(tun); err != nil {
		t.Fatalf("ipip link: %v", err)
	}
	l, err := h.LinkByName("tunl-test")
	if err != nil {
		t.Fatal(err)
	}
	if l.Type() != "ipip" {
		t.Fatalf("link type %q, want ipip", l.Type())
	}
}

func TestSCTPSocket(t *testing.T) {
	requireIPVS(t)
	var fd int
	err := netnstest.InNetns(netnstest.New(t), func() (err error) {
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)
		return err
	})
	if err != nil {
		t.Fatalf("SCTP socket: %v", err)
	}
	_ = unix.Close(fd)
}
