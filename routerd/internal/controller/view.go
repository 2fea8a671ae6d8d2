package controller

import (
	"net/netip"
	"time"

	"github.com/nodenet/nodenet/routerd/internal/desired"
	"github.com/nodenet/nodenet/routerd/internal/model"
)

// view is what `routerd routes` and `routerd peers` show of the last sync:
// its inputs and the decisions of the same desired-state code that
// programmed the kernel, kept as they were (the answers do not compute
// them a second time).
type view struct {
	generation  uint64
	at          time.Time
	err         string
	initialDone bool
	// paths are the best paths the sync read from the speaker; routes
	// what desired.Routes made of them; kept the routes found at start
	// that were kept beside them (initial sync).
	paths  []model.Path
	routes desired.RoutesResult
	kept   []model.Route
	// subnets are the node's, with their links.
	subnets []model.Subnet
	// adverts are announced with nextHop.
	adverts []model.Advertisement
	nextHop netip.Addr
}

// record ends the view of a sync.
func (v *view) record(at time.Time, err error, initialDone bool) {
	v.generation++
	v.at, v.err, v.initialDone = at, "", initialDone
	if err != nil {
		v.err = err.Error()
	}
}

// linkOf is the link a direct route to nextHop leaves through.
func (v *view) linkOf(nextHop netip.Addr) string {
	best := -1
	link := ""
	for _, s := range v.subnets {
		if s.Prefix.Contains(nextHop) && s.Prefix.Bits() > best {
			best, link = s.Prefix.Bits(), s.Link
		}
	}
	return link
}
