package nft

// Address plan of the unit tests: VIPs 198.19.0.0/24 and 2001:db8:19::/64,
// node addresses 198.18.0.1 and 2001:db8:a::1, pod CIDRs 198.18.128.0/17 and
// 2001:db8:80::/64, clients 198.18.0.0/24 and 2001:db8:a::/64.

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

func key(addr string, port uint16, proto model.Protocol) model.VSKey {
	return model.VSKey{Addr: netip.MustParseAddr(addr), Port: port, Proto: proto}
}

func rng(from, to string) Range {
	return Range{From: netip.MustParseAddr(from), To: netip.MustParseAddr(to)}
}

func prefixes(ps ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range ps {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

func vs(k model.VSKey, kind model.Kind, mods ...func(*model.VirtualService)) *model.VirtualService {
	v := &model.VirtualService{VSKey: k, Kind: kind, Scheduler: "rr"}
	for _, m := range mods {
		m(v)
	}
	return v
}

func local(v *model.VirtualService) { v.ExternalLocal = true }

func restricted(ranges ...string) func(*model.VirtualService) {
	return func(v *model.VirtualService) {
		v.SourceRestricted = true
		v.SourceRanges = prefixes(ranges...)
	}
}

func TestBuild(t *testing.T) {
	cip := key("198.19.0.10", 80, model.TCP)
	lb := key("198.19.0.30", 443, model.TCP)
	np := key("198.18.0.1", 30080, model.TCP)
	lb6 := key("2001:db8:19::30", 53, model.UDP)
	sctp := key("198.19.0.40", 9999, model.SCTP)
	for _, tc := range []struct {
		name     string
		services []*model.VirtualService
		pods     []netip.Prefix
		want     Desired
	}{
		{name: "nothing"},
		{
			name:     "ClusterIP and NodePort are VIPs",
			services: []*model.VirtualService{vs(np, model.NodePort), vs(cip, model.ClusterIP), vs(sctp, model.ClusterIP)},
			want:     Desired{VIPs: []model.VSKey{np, cip, sctp}},
		},
		{
			name:     "externalTrafficPolicy Local on external kinds only",
			services: []*model.VirtualService{vs(lb, model.LoadBalancer, local), vs(cip, model.ClusterIP, local), vs(np, model.NodePort, local)},
			want:     Desired{VIPs: []model.VSKey{np, cip, lb}, LocalVIPs: []model.VSKey{np, lb}},
		},
		{
			name: "source ranges merged, other family dropped, mapped IPv4 made IPv4",
			services: []*model.VirtualService{vs(lb, model.LoadBalancer, restricted(
				"198.18.0.0/25", "198.18.0.128/25", // adjacent: one range
				"198.18.0.7/32",                  // inside
				"198.18.5.9/24",                  // not masked
				"2001:db8:a::/64",                // IPv6 for an IPv4 VIP
				"::ffff:198.18.9.0/120",          // mapped: 198.18.9.0/24
				"198.18.7.0/24", "198.18.6.0/23", // overlapping
			))},
			want: Desired{
				VIPs:       []model.VSKey{lb},
				Restricted: []model.VSKey{lb},
				Allowed: []Allowed{
					{lb, rng("198.18.0.0", "198.18.0.255")},
					{lb, rng("198.18.5.0", "198.18.7.255")}, // 5/24 and 6/23 touch
					{lb, rng("198.18.9.0", "198.18.9.255")},
				},
			},
		},
		{
			name:     "restricted without ranges: nobody",
			services: []*model.VirtualService{vs(lb6, model.LoadBalancer, restricted())},
			want:     Desired{VIPs: []model.VSKey{lb6}, Restricted: []model.VSKey{lb6}},
		},
		{
			name:     "source ranges on a NodePort are not the table's business",
			services: []*model.VirtualService{vs(np, model.NodePort, restricted("198.18.0.0/24"))},
			want:     Desired{VIPs: []model.VSKey{np}},
		},
		{
			name: "everything from everywhere reaches 0.0.0.0/0",
			services: []*model.VirtualService{vs(lb, model.LoadBalancer, restricted("0.0.0.0/0", "198.18.0.0/24")),
				vs(lb6, model.LoadBalancer, restricted("::/0", "2001:db8::/32"))},
			want: Desired{
				VIPs:       []model.VSKey{lb, lb6},
				Restricted: []model.VSKey{lb, lb6},
				Allowed: []Allowed{
					{lb, rng("0.0.0.0", "255.255.255.255")},
					{lb6, rng("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")},
				},
			},
		},
		{
			name: "duplicates, bad keys and mapped addresses",
			services: []*model.VirtualService{
				vs(cip, model.ClusterIP), vs(cip, model.ClusterIP, local),
				vs(model.VSKey{Port: 80, Proto: model.TCP}, model.ClusterIP),
				vs(key("198.19.0.11", 80, model.Protocol(42)), model.ClusterIP),
				vs(key("::ffff:198.19.0.12", 80, model.UDP), model.ClusterIP),
				nil,
			},
			want: Desired{VIPs: []model.VSKey{cip, key("198.19.0.12", 80, model.UDP)}},
		},
		{
			name: "pod CIDRs: both families, masked, merged",
			pods: prefixes("198.18.129.7/24", "2001:db8:80::/64", "198.18.128.0/24", "198.18.128.0/25", "::ffff:198.18.200.0/120"),
			want: Desired{PodCIDRs: []Range{
				rng("198.18.128.0", "198.18.129.255"),
				rng("198.18.200.0", "198.18.200.255"),
				rng("2001:db8:80::", "2001:db8:80::ffff:ffff:ffff:ffff"),
			}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Build(model.State{Services: tc.services}, tc.pods)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Build:\n got %+v\nwant %+v", got, tc.want)
			}
			// Pure: the same input gives the same output.
			if again := Build(model.State{Services: tc.services}, tc.pods); !reflect.DeepEqual(again, got) {
				t.Fatalf("second Build differs: %+v", again)
			}
		})
	}
}

func TestRangeString(t *testing.T) {
	for _, tc := range []struct {
		r    Range
		want string
	}{
		{rng("198.18.0.0", "198.18.0.255"), "198.18.0.0/24"},
		{rng("198.18.0.7", "198.18.0.7"), "198.18.0.7"},
		{rng("198.18.0.0", "198.18.1.6"), "198.18.0.0-198.18.1.6"},
		{rng("0.0.0.0", "255.255.255.255"), "0.0.0.0/0"},
		{rng("2001:db8:80::", "2001:db8:80::ffff:ffff:ffff:ffff"), "2001:db8:80::/64"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.r, got, tc.want)
		}
	}
}
