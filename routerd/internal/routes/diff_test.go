package routes

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Unit tests of validation and the diff: no kernel, no root. Addresses:
// nodes on 198.18.0.0/24, pod CIDRs 198.19.x.0/24, IPv6 2001:2::/48.

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func tun(remote string) model.Tunnel {
	r := addr(remote)
	return model.Tunnel{Name: model.TunnelName(r), Local: addr("198.18.0.1"), Remote: r, MTU: 1480}
}

func viaTunnel(p, remote string) model.Route {
	return model.Route{Prefix: pfx(p), NextHop: addr(remote), Tunnel: model.TunnelName(addr(remote))}
}

func via(p, hop string) model.Route { return model.Route{Prefix: pfx(p), NextHop: addr(hop)} }

// kstate builds a kernel state: routes at routerd's metric, tunnels up.
func kstate(routes []model.Route, tunnels ...model.Tunnel) state {
	st := newState()
	for _, r := range routes {
		st.routes[ownKey(r.Prefix)] = kroute{Route: r}
	}
	for i, t := range tunnels {
		st.tunnels[t.Name] = ktunnel{Tunnel: t, Index: 10 + i, Up: true, IPIP: true}
	}
	return st
}

// planLines renders a plan in the order it is carried out.
func planLines(p plan) []string {
	var out []string
	for _, t := range p.AddTunnels {
		out = append(out, "add tunnel "+tunnelString(t))
	}
	for _, f := range p.FixTunnels {
		out = append(out, fmt.Sprintf("fix tunnel %s recreate=%v mtu=%v up=%v", f.Tunnel.Name, f.Recreate, f.MTU, f.Up))
	}
	for _, op := range p.Routes {
		s := op.Kind.String() + " route " + routeString(op.Route)
		if op.Metric != 0 {
			s += fmt.Sprintf(" metric %d", op.Metric)
		}
		out = append(out, s)
	}
	for _, name := range p.RemoveTunnels {
		out = append(out, "remove tunnel "+name)
	}
	return out
}

func TestDiff(t *testing.T) {
	a, b := tun("198.18.1.2"), tun("198.18.2.2")
	for _, tc := range []struct {
		name string
		d    Desired
		have state
		want []string
	}{{
		name: "empty",
		have: newState(),
	}, {
		name: "all new: tunnels before the routes into them, routes sorted",
		d: Desired{Routes: []model.Route{viaTunnel("198.19.2.0/24", "198.18.2.2"), via("2001:2:0:1001::/64", "2001:2::2"), via("198.19.1.0/24", "198.18.0.2")},
			Tunnels: []model.Tunnel{b}},
		have: newState(),
		want: []string{
			"add tunnel nnip-c6120202 198.18.0.1→198.18.2.2 mtu 1480",
			"add route 198.19.1.0/24 via 198.18.0.2",
			"add route 198.19.2.0/24 via 198.18.2.2 dev nnip-c6120202 onlink",
			"add route 2001:2:0:1001::/64 via 2001:2::2",
		},
	}, {
		name: "same: nothing",
		d:    Desired{Routes: []model.Route{via("198.19.1.0/24", "198.18.0.2"), viaTunnel("198.19.2.0/24", "198.18.2.2")}, Tunnels: []model.Tunnel{b}},
		have: kstate([]model.Route{via("198.19.1.0/24", "198.18.0.2"), viaTunnel("198.19.2.0/24", "198.18.2.2")}, b),
	}, {
		name: "next hop changed, direct to tunnel, gone: replaces before deletes",
		d:    Desired{Routes: []model.Route{via("198.19.1.0/24", "198.18.0.3"), viaTunnel("198.19.3.0/24", "198.18.1.2")}, Tunnels: []model.Tunnel{a}},
		have: kstate([]model.Route{via("198.19.1.0/24", "198.18.0.2"), via("198.19.2.0/24", "198.18.0.2"), via("198.19.3.0/24", "198.18.0.2")}, a),
		want: []string{
			"replace route 198.19.1.0/24 via 198.18.0.3",
			"replace route 198.19.3.0/24 via 198.18.1.2 dev nnip-c6120102 onlink",
			"delete route 198.19.2.0/24 via 198.18.0.2",
		},
	}, {
		name: "tunnel not desired: its routes deleted, then the link",
		d:    Desired{Routes: []model.Route{viaTunnel("198.19.1.0/24", "198.18.1.2")}, Tunnels: []model.Tunnel{a}},
		have: kstate([]model.Route{viaTunnel("198.19.1.0/24", "198.18.1.2"), viaTunnel("198.19.2.0/24", "198.18.2.2")}, a, b),
		want: []string{
			"delete route 198.19.2.0/24 via 198.18.2.2 dev nnip-c6120202 onlink",
			"remove tunnel nnip-c6120202",
		},
	}, {
		name: "tunnel with other endpoints: re-created, its routes added again, not deleted",
		d: Desired{Routes: []model.Route{viaTunnel("198.19.1.0/24", "198.18.1.2")},
			Tunnels: []model.Tunnel{{Name: a.Name, Local: addr("198.18.0.9"), Remote: a.Remote, MTU: a.MTU}}},
		have: kstate([]model.Route{viaTunnel("198.19.1.0/24", "198.18.1.2"), viaTunnel("198.19.9.0/24", "198.18.1.2")}, a),
		want: []string{
			"fix tunnel nnip-c6120102 recreate=true mtu=false up=false",
			"add route 198.19.1.0/24 via 198.18.1.2 dev nnip-c6120102 onlink",
		},
	}, {
		name: "tunnel MTU changed and down: fixed in place, routes written again",
		d:    Desired{Tunnels: []model.Tunnel{{Name: a.Name, Local: a.Local, Remote: a.Remote, MTU: 1400}}},
		have: func() state {
			st := kstate(nil, a)
			k := st.tunnels[a.Name]
			k.Up = false
			st.tunnels[a.Name] = k
			return st
		}(),
		want: []string{"fix tunnel nnip-c6120102 recreate=false mtu=true up=true"},
	}, {
		name: "MTU 0 is the kernel's choice: any MTU is fine",
		d:    Desired{Tunnels: []model.Tunnel{{Name: a.Name, Local: a.Local, Remote: a.Remote}}},
		have: kstate(nil, a),
	}, {
		name: "a link with the prefix that is not IPIP is re-created",
		d:    Desired{Tunnels: []model.Tunnel{a}},
		have: func() state {
			st := newState()
			st.tunnels[a.Name] = ktunnel{Tunnel: model.Tunnel{Name: a.Name, MTU: 1500}, Index: 3, Up: true}
			return st
		}(),
		want: []string{"fix tunnel nnip-c6120102 recreate=true mtu=false up=false"},
	}, {
		name: "odd route of the same prefix replaced, other metric deleted",
		d:    Desired{Routes: []model.Route{via("198.19.1.0/24", "198.18.0.2"), via("2001:2:0:1001::/64", "2001:2::2")}},
		have: func() state {
			st := newState()
			st.routes[ownKey(pfx("198.19.1.0/24"))] = kroute{Route: via("198.19.1.0/24", "198.18.0.2"), odd: true}
			st.routes[ownKey(pfx("2001:2:0:1001::/64"))] = kroute{Route: via("2001:2:0:1001::/64", "2001:2::2")}
			st.routes[rkey{pfx("2001:2:0:1001::/64"), 50}] = kroute{Route: via("2001:2:0:1001::/64", "2001:2::3")}
			return st
		}(),
		want: []string{
			"replace route 198.19.1.0/24 via 198.18.0.2",
			"delete route 2001:2:0:1001::/64 via 2001:2::3 metric 50",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w, errs := validate(tc.d)
			if len(errs) > 0 {
				t.Fatalf("validate: %v", errs)
			}
			if got := planLines(diff(w, tc.have)); !slices.Equal(got, tc.want) {
				t.Fatalf("plan =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	a := tun("198.18.1.2")
	d := Desired{
		Tunnels: []model.Tunnel{
			a,
			a, // the same twice: fine
			{Name: a.Name, Remote: addr("198.18.9.9")},                  // same name, other tunnel
			{Name: "tunl1", Remote: addr("198.18.1.3")},                 // no prefix
			{Name: "nnip-0123456789abcdef", Remote: addr("198.18.1.3")}, // too long
			{Name: "nnip-v6", Remote: addr("2001:2::9")},                // IPv6 remote
			{Name: "nnip-nolocal", Local: addr("0.0.0.0"), Remote: addr("198.18.1.4")},
			{Name: "nnip-mtu", Remote: addr("198.18.1.5"), MTU: -1},
		},
		Routes: []model.Route{
			via("198.19.1.0/24", "198.18.0.2"),
			via("198.19.1.0/24", "198.18.0.2"), // the same twice: fine
			via("198.19.1.0/24", "198.18.0.3"), // same prefix, other route
			{NextHop: addr("198.18.0.2")},      // no prefix
			via("198.19.2.1/24", "198.18.0.2"), // host bits
			via("198.19.3.0/24", "2001:2::2"),  // family
			{Prefix: pfx("198.19.4.0/24")},     // nowhere
			via("198.19.5.0/24", "0.0.0.0"),
			via("198.19.6.0/24", "224.0.0.1"),
			{Prefix: pfx("2001:2:0:1001::/64"), NextHop: addr("2001:2::2"), Tunnel: a.Name}, // IPv6 into IPIP
			{Prefix: pfx("198.19.7.0/24"), NextHop: addr("198.18.1.3"), Tunnel: "nnip-c6120103"},
			{Prefix: pfx("::ffff:198.19.8.0/120"), NextHop: addr("198.18.0.2")},
			{Prefix: pfx("198.19.9.0/24"), NextHop: addr("fe80::1%eth0")},
			{Prefix: pfx("198.19.10.0/24"), Tunnel: a.Name}, // no next hop into a tunnel: fine
			{Prefix: pfx("0.0.0.0/0"), NextHop: addr("198.18.0.2")},
		},
	}
	w, errs := validate(d)
	for _, err := range errs {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%v is not ErrInvalid", err)
		}
		var re *RouteError
		var te *TunnelError
		if !errors.As(err, &re) && !errors.As(err, &te) {
			t.Errorf("%v is neither a RouteError nor a TunnelError", err)
		}
		t.Log(err)
	}
	if len(errs) != 5+11 {
		t.Errorf("%d errors, want 16", len(errs))
	}
	if len(w.tunnels) != 2 || w.tunnels["nnip-nolocal"].Local.IsValid() {
		t.Errorf("tunnels kept: %v (an unspecified local is any)", w.tunnels)
	}
	if len(w.routes) != 3 || w.routes[pfx("198.19.1.0/24")] != via("198.19.1.0/24", "198.18.0.2") {
		t.Errorf("routes kept: %v", w.routes)
	}
}

// TestDiffCostIsTheChange: with 5k routes and one changed, the plan holds
// one operation.
func TestDiffCostIsTheChange(t *testing.T) {
	var rs []model.Route
	for i := range 5000 {
		rs = append(rs, model.Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), 32), NextHop: addr("198.18.0.2")})
	}
	have := kstate(rs)
	rs[1234].NextHop = addr("198.18.0.3")
	w, _ := validate(Desired{Routes: rs})
	if got := planLines(diff(w, have)); !slices.Equal(got, []string{"replace route 198.19.4.210/32 via 198.18.0.3"}) {
		t.Fatalf("plan = %q", got)
	}
}
