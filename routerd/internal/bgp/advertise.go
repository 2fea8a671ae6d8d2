package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	api "github.com/osrg/gobgp/v3/api"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// announcement is one locally originated path: a prefix and its next hop.
type announcement struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
}

// advertPlan is what SetAdvertisements does to the local paths.
type advertPlan struct {
	// Announce holds the new prefixes and those whose next hop changed:
	// announcing a prefix again replaces the old path (an implicit
	// withdrawal), so peers never see it disappear in between.
	Announce []announcement
	Withdraw []announcement // as they were announced
}

// planAdverts compares the announced prefixes (prefix → next hop) with the
// wanted ones. An advertisement that cannot be announced (a bad prefix, no
// next hop of its family) is reported and treated as unwanted: announcing a
// prefix with a next hop that is no longer right would be worse than not
// announcing it. The same prefix twice is announced once.
func planAdverts(have map[netip.Prefix]netip.Addr, want []model.Advertisement, nextHop netip.Addr) (advertPlan, error) {
	var (
		plan  advertPlan
		errs  []error
		wants = make(map[netip.Prefix]bool, len(want))
	)
	for _, a := range want {
		p, err := normalPrefix(a.Prefix)
		if err == nil {
			var nh netip.Addr
			if nh, err = nextHopFor(p, nextHop); err == nil {
				if !wants[p] {
					wants[p] = true
					if old, ok := have[p]; !ok || old != nh {
						plan.Announce = append(plan.Announce, announcement{p, nh})
					}
				}
				continue
			}
		}
		errs = append(errs, fmt.Errorf("advertisement %s (%s): %w", a.Prefix, a.Why, err))
	}
	for p, nh := range have {
		if !wants[p] {
			plan.Withdraw = append(plan.Withdraw, announcement{p, nh})
		}
	}
	byPrefix := func(a, b announcement) int { return model.ComparePrefix(a.Prefix, b.Prefix) }
	slices.SortFunc(plan.Announce, byPrefix)
	slices.SortFunc(plan.Withdraw, byPrefix)
	return plan, errors.Join(errs...)
}

// apply returns the announced prefixes once every step of the plan
// succeeded (what the fake keeps).
func (p advertPlan) apply(have map[netip.Prefix]netip.Addr) map[netip.Prefix]netip.Addr {
	out := make(map[netip.Prefix]netip.Addr, len(have)+len(p.Announce))
	for k, v := range have {
		out[k] = v
	}
	for _, a := range p.Withdraw {
		delete(out, a.Prefix)
	}
	for _, a := range p.Announce {
		out[a.Prefix] = a.NextHop
	}
	return out
}

// normalPrefix returns p with its host bits cleared, or why it cannot be
// announced.
func normalPrefix(p netip.Prefix) (netip.Prefix, error) {
	switch {
	case !p.IsValid():
		return p, errors.New("invalid prefix")
	case p.Addr().Is4In6():
		return p, errors.New("IPv4-mapped IPv6 prefix")
	case p.Addr().Zone() != "":
		return p, errors.New("prefix with a zone")
	}
	return p.Masked(), nil
}

// nextHopFor is the next hop of prefix p: nextHop when it is of p's family;
// when nextHop is not valid at all, the unspecified address of p's family,
// which GoBGP replaces by each session's local address. A next hop of the
// other family is an error: an IPv4 next hop for an IPv6 prefix would need
// the extended next hop encoding, which peers rarely accept.
func nextHopFor(p netip.Prefix, nextHop netip.Addr) (netip.Addr, error) {
	switch {
	case !nextHop.IsValid() && p.Addr().Is4():
		return netip.IPv4Unspecified(), nil
	case !nextHop.IsValid():
		return netip.IPv6Unspecified(), nil
	case nextHop.Is4() != p.Addr().Is4():
		return netip.Addr{}, fmt.Errorf("no next hop of its family (next hop %s)", nextHop)
	}
	return nextHop, nil
}

// advertPath converts a into GoBGP's path: an IPv4 prefix with a NEXT_HOP
// attribute, an IPv6 prefix with MP_REACH_NLRI; origin IGP.
func advertPath(a announcement) (*api.Path, error) {
	nlri, err := anypb.New(&api.IPAddressPrefix{Prefix: a.Prefix.Addr().String(), PrefixLen: uint32(a.Prefix.Bits())})
	if err != nil {
		return nil, err
	}
	origin, err := anypb.New(&api.OriginAttribute{Origin: 0})
	if err != nil {
		return nil, err
	}
	family := familyIPv4
	var nh *anypb.Any
	if a.Prefix.Addr().Is4() {
		nh, err = anypb.New(&api.NextHopAttribute{NextHop: a.NextHop.String()})
	} else {
		family = familyIPv6
		nh, err = anypb.New(&api.MpReachNLRIAttribute{Family: family, NextHops: []string{a.NextHop.String()}, Nlris: []*anypb.Any{nlri}})
	}
	if err != nil {
		return nil, err
	}
	return &api.Path{Family: family, Nlri: nlri, Pattrs: []*anypb.Any{origin, nh}}, nil
}

// SetAdvertisements is part of Router.
func (s *Speaker) SetAdvertisements(ctx context.Context, adverts []model.Advertisement, nextHop netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wantAdverts, s.wantNextHop = slices.Clone(adverts), nextHop
	if s.srv == nil {
		return nil // applied by Start
	}
	return s.applyAdvertsLocked(ctx)
}

func (s *Speaker) applyAdvertsLocked(ctx context.Context) error {
	plan, err := planAdverts(s.adverts, s.wantAdverts, s.wantNextHop)
	errs := []error{err}
	for _, a := range plan.Withdraw {
		p, err := advertPath(a)
		if err == nil {
			err = s.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: p.Family, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("withdrawing %s: %w", a.Prefix, err))
			continue
		}
		delete(s.adverts, a.Prefix)
	}
	for _, a := range plan.Announce {
		p, err := advertPath(a)
		if err == nil {
			_, err = s.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: p})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("announcing %s: %w", a.Prefix, err))
			continue
		}
		s.adverts[a.Prefix] = a.NextHop
	}
	return errors.Join(errs...)
}
