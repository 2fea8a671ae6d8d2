package vip

import (
	"errors"
	"fmt"
	"net/netip"
)

// RouteProtocol is the route protocol number (rtm_protocol, `ip route …
// proto 79`) of proxyd's VIP routes. It is how proxyd recognises its routes
// after a restart, and what keeps it from touching anyone else's: List
// reports only routes of this protocol and Delete asks the kernel to
// delete only a route of this protocol. routerd uses 78; both are outside
// the numbers iproute2's rt_protos names (kernel, boot, static, dhcp, the
// routing daemons: zebra 11, bird 12, keepalived 18, babel 42, bgp 186, …).
const RouteProtocol = 79

// RouteMetric is the metric (RTA_PRIORITY) of proxyd's VIP routes. The
// kernel's own local routes, made for every address of the node, have
// metric 0, and a route's identity in a table is (destination, tos,
// metric), not its protocol: with metric 0 a VIP that is also a node
// address (an ExternalIP naming the node, say) could not get proxyd's
// route, and deleting one would race with the address's. With another
// metric both routes live side by side: the address's wins lookups while
// it exists (lower metric), proxyd's takes over when the address goes, and
// each owner deletes only its own. It is not 1024 either, which is what
// IPv6 gives a route added without a metric (`ip -6 route add local …` by
// hand), so such a route cannot collide with proxyd's.
const RouteMetric = 79

// Interface is how proxyd makes the kernel deliver its VIPs locally, so that
// IPVS (at LOCAL_IN and LOCAL_OUT) sees the packets sent to them. A VIP is a
// single address of either family; each is one local route (see the
// package comment). Every method is safe for concurrent use.
type Interface interface {
	// List returns the VIPs proxyd's routes deliver, both families,
	// sorted (netip.Addr.Compare) and without duplicates. Routes of other
	// protocols (addresses of the node, other daemons') are never listed.
	List() ([]netip.Addr, error)
	// Add makes the kernel deliver vip locally. Adding a VIP proxyd's
	// route already delivers succeeds without change. It fails with a
	// *VIPError wrapping ErrInvalid for an address that cannot be a VIP
	// (see CheckAddr), or wrapping ErrExists when a route that is not
	// proxyd's holds the key proxyd's would have (same destination and
	// RouteMetric in the local table).
	Add(vip netip.Addr) error
	// Delete removes proxyd's route for vip. Deleting a VIP proxyd has no
	// route for succeeds without change; other routes for the same
	// address (a node address's, another owner's) are never touched.
	Delete(vip netip.Addr) error
	// AddAll is Add for many VIPs, in as few kernel requests as it can
	// (one netlink write per chunk of routes, see Kernel). The VIPs that
	// fail do not stop the others: the error joins one *VIPError per
	// failed VIP (see FailedVIPs) and, if the outcome of some writes is
	// unknown, ErrOverrun.
	AddAll(vips []netip.Addr) error
	// DeleteAll is Delete for many VIPs, batched as AddAll is.
	DeleteAll(vips []netip.Addr) error
}

// The errors callers test for with errors.Is. Each comes wrapped in a
// *VIPError naming the VIP, except ErrOverrun and ErrInconsistentDump,
// which concern a whole request.
var (
	// ErrInvalid: the address cannot be a VIP (see CheckAddr), or the
	// kernel refused the route as invalid. Retrying does not help.
	ErrInvalid = errors.New("invalid VIP")
	// ErrExists: a route that is not proxyd's (another protocol) has the
	// key proxyd's route for the VIP would have. Someone else must remove
	// it; retrying alone does not help.
	ErrExists = errors.New("a route of another owner holds the VIP's route key")
	// ErrOverrun: the kernel's answers to a batch overflowed the socket's
	// receive buffer, so whether some of its routes were written is
	// unknown. List tells; the next sync repairs either way.
	ErrOverrun = errors.New("the kernel's answers to a batch were lost (receive buffer overrun); outcome unknown")
	// ErrInconsistentDump: every attempt to dump the routes raced with
	// writes by someone else (the kernel flagged each dump
	// NLM_F_DUMP_INTR). Retrying later helps. Errors wrapping it also
	// match netlink.ErrDumpInterrupted.
	ErrInconsistentDump = errors.New("the route dump kept changing while it was read")
)

// VIPError is the failure of one VIP's route.
type VIPError struct {
	Op  string // "add" or "delete"
	VIP netip.Addr
	Err error
}

func (e *VIPError) Error() string {
	return fmt.Sprintf("vip: %s local route for %s: %v", e.Op, e.VIP, e.Err)
}

func (e *VIPError) Unwrap() error { return e.Err }

// FailedVIPs returns the VIPs of the *VIPErrors in err, which may be one
// of them or a join (as AddAll and DeleteAll return).
func FailedVIPs(err error) []netip.Addr {
	var out []netip.Addr
	var walk func(error)
	walk = func(err error) {
		var ve *VIPError
		switch e := err.(type) {
		case nil:
		case interface{ Unwrap() []error }:
			for _, inner := range e.Unwrap() {
				walk(inner)
			}
		default:
			if errors.As(err, &ve) {
				out = append(out, ve.VIP)
			}
		}
	}
	walk(err)
	return out
}

// CheckAddr returns an error wrapping ErrInvalid when a cannot be a VIP:
// the zero Addr, an IPv6 address with a zone, an IPv4-mapped IPv6 address
// (proxyd handles IPv4 VIPs as IPv4: a mapped one would be listed back in
// another form than it was added, and a reconciler comparing the two would
// never converge), or an unspecified, loopback, multicast or link-local
// address, which a local route cannot make a service address.
func CheckAddr(a netip.Addr) error {
	var why string
	switch {
	case !a.IsValid():
		why = "no address"
	case a.Zone() != "":
		why = "has a zone"
	case a.Is4In6():
		why = "IPv4-mapped IPv6 address; use the IPv4 form"
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(),
		a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		why = "not a unicast address with a scope beyond the link"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalid, a, why)
}
