package nftutil

import (
	"errors"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
)

// Socket buffers. A transaction is one sendmsg, limited by the socket's
// send buffer (212992 bytes by default; a table of 10k elements is more):
// Dial forces a buffer that fits the batch, as nft does (SO_SNDBUFFORCE,
// which needs CAP_NET_ADMIN like the writes themselves). The kernel
// acknowledges every message of a batch, all queued before the first is
// read, and dumps of 10k elements are long: the receive buffer is raised
// too, so that acknowledgements are never dropped (ENOBUFS, although the
// transaction was applied).
const (
	MinSendBuffer = 1 << 20
	RecvBuffer    = 4 << 20
	// AckBytes is the receive buffer asked for per message of a batch:
	// an acknowledgement takes about 1.1 KiB of the buffer the kernel
	// grants (twice what is asked for), measured as the point where a
	// batch of 7500 messages overflowed 4 MiB.
	AckBytes = 2048
)

// ConnConfig says how to reach the kernel.
type ConnConfig struct {
	// NetNS is a file descriptor of the network namespace to work in; 0
	// means the namespace of the process.
	NetNS int
	// SendBuffer is the size of the largest batch the connection will
	// send (an estimate); the buffer is at least MinSendBuffer.
	SendBuffer int
	// Messages is the number of messages of that batch: the receive
	// buffer holds their acknowledgements (at least RecvBuffer).
	Messages int
	// Lasting keeps one socket for every request of the connection
	// (google/nftables otherwise opens one per request): for reads of
	// many chains or sets. The caller closes it with CloseLasting.
	Lasting bool
	// TestDial replaces the kernel in unit tests (nltest).
	TestDial nltest.Func
}

// Dial returns a google/nftables connection as cfg says.
func Dial(cfg ConnConfig) (*nftables.Conn, error) {
	recv := max(RecvBuffer, cfg.Messages*AckBytes)
	opts := []nftables.ConnOption{nftables.WithSockOptions(SocketBuffers(max(cfg.SendBuffer, MinSendBuffer), recv))}
	if cfg.NetNS != 0 {
		opts = append(opts, nftables.WithNetNSFd(cfg.NetNS))
	}
	if cfg.TestDial != nil {
		opts = append(opts, nftables.WithTestDial(cfg.TestDial))
	}
	if cfg.Lasting {
		opts = append(opts, nftables.AsLasting())
	}
	return nftables.New(opts...)
}

// SocketBuffers sets the send and receive buffers of a netlink socket.
func SocketBuffers(send, recv int) nftables.SockOption {
	return func(c *netlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return nil // not a real socket (tests)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = errors.Join(
				setBuffer(int(fd), unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, send),
				setBuffer(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, recv))
		}); err != nil {
			return err
		}
		return serr
	}
}

// setBuffer sets a socket buffer, beyond the sysctl maximum when allowed;
// without CAP_NET_ADMIN the plain option is capped, and a batch too large
// for it fails with EMSGSIZE, which the caller reports.
func setBuffer(fd, force, plain, n int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, n); err == nil {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, n)
}
