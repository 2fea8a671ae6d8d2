package echo

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// ServeUDP answers the datagrams arriving on pc (an IPv4 UDP socket, usually
// bound to 0.0.0.0:port) until Close. Each reply leaves from the address
// the request was sent to, and Answer.Destination reports that address,
// which a wildcard socket only learns through IP_PKTINFO.
func (s *Server) ServeUDP(pc *net.UDPConn) error {
	raw, err := pc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("echo: IP_PKTINFO: %w", serr)
	}
	local := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	if !s.track(pc) {
		return net.ErrClosed
	}
	s.wg.Go(func() {
		buf := make([]byte, maxLine)
		oob := make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
		for {
			n, oobn, _, src, err := pc.ReadMsgUDPAddrPort(buf, oob)
			if err != nil {
				if errClosed(err) {
					return
				}
				continue // e.g. ICMP errors reported on the socket: keep serving
			}
			dst := pktinfoDst(oob[:oobn])
			line, _, _ := bytes.Cut(buf[:n], []byte{'\n'})
			out, err := encodeAnswer(Answer{
				Name:        s.name,
				Proto:       "udp",
				Source:      netip.AddrPortFrom(src.Addr().Unmap(), src.Port()),
				Destination: netip.AddrPortFrom(dst, local.Port()),
				Payload:     parseRequest(line),
			})
			if err != nil {
				continue
			}
			var replyOOB []byte
			if dst.IsValid() {
				replyOOB = unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: dst.As4()})
			}
			_, _, _ = pc.WriteMsgUDPAddrPort(out, replyOOB, src)
		}
	})
	return nil
}

// pktinfoDst returns the destination address of a datagram from its
// IP_PKTINFO control message (invalid when there is none).
func pktinfoDst(oob []byte) netip.Addr {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}
	}
	for _, m := range msgs {
		if m.Header.Level != unix.IPPROTO_IP || m.Header.Type != unix.IP_PKTINFO || len(m.Data) < unix.SizeofInet4Pktinfo {
			continue
		}
		// struct in_pktinfo { int ipi_ifindex; struct in_addr ipi_spec_dst; struct in_addr ipi_addr; }:
		// ipi_addr, the header's destination address, is bytes 8..12.
		return netip.AddrFrom4([4]byte(m.Data[8:12]))
	}
	return netip.Addr{}
}
