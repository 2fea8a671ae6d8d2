// Package routes is routerd's port to the kernel's routing table: the
// routes to other nodes' pod CIDRs (directly through a next hop on a
// connected subnet, or through an IPIP tunnel to the next hop) and the
// tunnel links themselves.
//
// What routerd owns, and nothing else is ever touched:
//   - routes of its route protocol (Config.Protocol, 196 by default) in its
//     table (Config.Table, main by default), IPv4 and IPv6;
//   - links whose name starts with model.TunnelPrefix ("nnip-").
//
// Apply is declarative: it makes the kernel hold exactly the desired
// routes and tunnels among those. The first Apply (and the first after
// Invalidate or after any failed write) reads the kernel with netlink dumps
// and diffs against it, so a restart adopts what the previous process left
// and writes nothing when nothing changed; later ones diff against what the
// adapter last wrote, which costs O(change). The route writes of one Apply
// go to the kernel as many RTM_NEWROUTE/RTM_DELROUTE messages in one
// sendmsg (a few when the batch exceeds the socket buffers), each
// acknowledged on its own, so one bad route fails alone.
//
// Kernel is the netlink adapter, Fake an in-memory kernel with the same
// semantics for the tests of routerd's other packages.
package routes

import (
	"errors"
	"fmt"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// DefaultProtocol is the route protocol number routerd marks its routes
// with (rtm_protocol), so that it recognises them after a restart and
// never touches anyone else's. 196 is free in iproute2's rt_protos and
// not used by the common routing daemons (bird 12, zebra 11, bgp 186, …).
const DefaultProtocol uint8 = 196

// Desired is the complete set of routes and tunnels routerd wants.
type Desired struct {
	Routes  []model.Route
	Tunnels []model.Tunnel
}

// Config says where the adapter works.
type Config struct {
	// NetNS is a file descriptor of the network namespace to work in; 0
	// means the namespace of the process.
	NetNS int
	// Protocol is the route protocol number routerd owns (0:
	// DefaultProtocol).
	Protocol uint8
	// Table is the routing table (0: main).
	Table int
}

// Result says what an Apply did.
type Result struct {
	RoutesAdded, RoutesReplaced, RoutesRemoved   int
	TunnelsAdded, TunnelsChanged, TunnelsRemoved int
	// Full says the kernel was read (first Apply, after Invalidate or
	// after an error) instead of trusting what was last written.
	Full bool
	// Messages counts the netlink write requests sent (route messages
	// and link requests); the dumps of a full read are not counted, so a
	// restart with nothing to change reports 0.
	Messages int
}

// Interface is the kernel as routerd's reconciler sees it.
type Interface interface {
	// Apply makes the kernel hold exactly d among what routerd owns:
	// routes of Config.Protocol in Config.Table, and links named with
	// model.TunnelPrefix. Nothing else is touched. It adopts what is
	// already there (a restart with nothing changed writes nothing).
	// Bad entries of d and writes the kernel refuses are reported in the
	// error (RouteError, TunnelError) and skipped; the rest is applied.
	Apply(d Desired) (Result, error)
	// Invalidate makes the next Apply read the kernel again (periodic
	// repair of drift by anyone else).
	Invalidate()
	// Installed lists routerd's routes in the kernel now (for status and
	// `routerd routes`), sorted by prefix.
	Installed() ([]model.Route, error)
	// Delete removes every route of Config.Protocol in Config.Table and
	// every tunnel link routerd owns (routerd cleanup).
	Delete() error
}

var (
	_ Interface = (*Kernel)(nil)
	_ Interface = (*Fake)(nil)
)

// ErrInvalid marks bad input: a route or tunnel of Desired that cannot be
// written at all (invalid prefix, next hop of the wrong family, tunnel
// route into a tunnel that is not desired, …). It is skipped; the rest is
// applied.
var ErrInvalid = errors.New("invalid")

// RouteError is the failure of one route: bad input (wrapping ErrInvalid)
// or the kernel's refusal (wrapping its errno, e.g. ENETUNREACH for a next
// hop on no connected subnet).
type RouteError struct {
	Route model.Route
	Err   error
}

func (e *RouteError) Error() string { return fmt.Sprintf("route %s: %v", e.Route, e.Err) }
func (e *RouteError) Unwrap() error { return e.Err }

// TunnelError is the failure of one tunnel link.
type TunnelError struct {
	Name string
	Err  error
}

func (e *TunnelError) Error() string { return fmt.Sprintf("tunnel %s: %v", e.Name, e.Err) }
func (e *TunnelError) Unwrap() error { return e.Err }

// withDefaults fills the zero fields of cfg.
func (cfg Config) withDefaults() Config {
	if cfg.Protocol == 0 {
		cfg.Protocol = DefaultProtocol
	}
	if cfg.Table == 0 {
		cfg.Table = mainTable
	}
	return cfg
}

// mainTable is RT_TABLE_MAIN: the kernel reports routes of the main table
// with it, never 0.
const mainTable = 254
