package netns

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Stale kernel state makes network tests lie (see PITFALLS.md): a
// conntrack entry from an earlier step lets a reused source port through a
// policy that now denies it, and a neighbour entry pointing at a deleted
// pod's MAC black-holes traffic to its successor. These helpers clear them.

// FlushConntrack deletes every conntrack entry of the namespace (IPv4), the
// equivalent of `conntrack -F` run inside it. Call it between the steps of a
// policy test.
func (n *NetNS) FlushConntrack() error {
	if err := n.nl.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
		return fmt.Errorf("%s: flush conntrack: %w", n.Name, err)
	}
	return nil
}

// FlushNeighbours deletes the IPv4 neighbour entries for ip on every link of
// the namespace, or all IPv4 neighbour entries when ip is the zero Addr.
func (n *NetNS) FlushNeighbours(ip netip.Addr) error {
	neighs, err := n.nl.NeighList(0, unix.AF_INET)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return fmt.Errorf("%s: list neighbours: %w", n.Name, err)
	}
	var errs []error
	for i := range neighs {
		nb := &neighs[i]
		a, ok := netip.AddrFromSlice(nb.IP)
		if !ok || (ip.IsValid() && a.Unmap() != ip) {
			continue
		}
		if err := n.nl.NeighDel(nb); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("%s: delete neighbour %s: %w", n.Name, a, err))
		}
	}
	return errors.Join(errs...)
}
