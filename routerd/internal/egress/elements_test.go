package egress

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/nftables"
)

// Address plan of these tests: node 198.18.0.10, pod CIDRs in
// 198.18.128.0/17, Services 198.19.128.0/17, IPv6 2001:db8::/32.

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func rangeStrings(rs []ipRange) []string {
	out := []string{}
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{nil, []string{}},
		{[]string{"198.18.129.0/24", "198.18.128.0/24"}, []string{"198.18.128.0/23"}},                    // adjacent
		{[]string{"198.18.128.0/17", "198.18.130.0/24"}, []string{"198.18.128.0/17"}},                    // contained
		{[]string{"198.18.128.0/24", "198.18.130.0/24"}, []string{"198.18.128.0/24", "198.18.130.0/24"}}, // apart
		{[]string{"198.18.128.0/24", "198.18.129.0/25"}, []string{"198.18.128.0-198.18.129.127"}},        // not a prefix once joined
		{[]string{"0.0.0.0/0", "198.18.0.0/15"}, []string{"0.0.0.0/0"}},                                  // reaches the top
		{[]string{"255.255.255.0/24", "255.255.255.255/32"}, []string{"255.255.255.0/24"}},
		{[]string{"2001:db8::/64", "2001:db8:0:1::/64"}, []string{"2001:db8::/63"}},
	} {
		v4, v6, _ := split(pfx(tc.in...))
		got := rangeStrings(merge(append(v4, v6...)))
		if !slices.Equal(got, tc.want) {
			t.Errorf("merge(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestBuild(t *testing.T) {
	c, skipped := build(Desired{
		PodCIDRs:     []netip.Prefix{netip.MustParsePrefix("198.18.128.0/24"), netip.MustParsePrefix("2001:db8:80::/64"), {}},
		NoMasquerade: append(pfx("198.18.128.0/17", "198.19.128.5/17", "::ffff:198.18.0.0/112"), pfx("2001:db8:1::/48")...),
	})
	for set, want := range map[string][]string{
		setPodCIDRs4:     {"198.18.128.0/24"},
		setPodCIDRs6:     {"2001:db8:80::/64"},
		setClusterCIDRs4: {"198.18.128.0/17", "198.19.128.0/17"}, // the node's pod CIDR inside the cluster's; host bits dropped
		setClusterCIDRs6: {"2001:db8:1::/48", "2001:db8:80::/64"},
	} {
		if got := rangeStrings(c[set]); !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", set, got, want)
		}
	}
	if len(skipped) != 2 {
		t.Errorf("skipped %v, want the zero prefix and the IPv4-mapped one", skipped)
	}
}

func TestDiff(t *testing.T) {
	have, _ := build(Desired{PodCIDRs: pfx("198.18.128.0/24"), NoMasquerade: pfx("198.18.128.0/17", "198.19.128.0/17")})
	want, _ := build(Desired{PodCIDRs: pfx("198.18.130.0/24"), NoMasquerade: pfx("198.18.128.0/17", "198.19.128.0/17", "198.18.0.0/24")})
	add, del := diff(have, want)
	if got := rangeStrings(add[setPodCIDRs4]); !slices.Equal(got, []string{"198.18.130.0/24"}) {
		t.Errorf("pod set adds %v", got)
	}
	if got := rangeStrings(del[setPodCIDRs4]); !slices.Equal(got, []string{"198.18.128.0/24"}) {
		t.Errorf("pod set deletes %v", got)
	}
	if got := rangeStrings(add[setClusterCIDRs4]); !slices.Equal(got, []string{"198.18.0.0/24"}) {
		t.Errorf("cluster set adds %v", got)
	}
	if len(del[setClusterCIDRs4]) != 0 || len(add[setPodCIDRs6]) != 0 {
		t.Errorf("unexpected changes: %v, %v", del, add)
	}
	if a, d := diff(want, want); len(a) != 0 || len(d) != 0 {
		t.Errorf("diff of equal contents: %v, %v", a, d)
	}
	if !want.equal(want.clone()) || want.equal(have) {
		t.Error("equal is wrong")
	}
}

func TestKernelElementsRoundTrip(t *testing.T) {
	for _, s := range setSpecs() {
		in := pfx("198.18.128.0/24", "198.18.130.7/32", "255.255.255.0/24")
		if s.v6 {
			in = pfx("2001:db8::/64", "ffff:ffff:ffff:ffff::/64")
		}
		v4, v6, _ := split(in)
		rs := merge(append(v4, v6...))
		kes := kernelElems(rs)
		if len(kes) != kernelCount(rs) {
			t.Fatalf("%s: %d kernel elements, kernelCount %d", s.name, len(kes), kernelCount(rs))
		}
		// The kernel lists them in its own order, nft adds a sentinel.
		slices.Reverse(kes)
		kes = append(kes, nftables.SetElement{Key: make([]byte, s.keyLen()), IntervalEnd: true})
		back, ok := rangesFromKernel(s, kes)
		if !ok || !slices.Equal(back, rs) {
			t.Errorf("%s: %v back, want %v", s.name, rangeStrings(back), rangeStrings(rs))
		}
	}
	// Elements of another length are not this set's.
	if _, ok := rangesFromKernel(setSpecs()[0], []nftables.SetElement{{Key: []byte{1, 2}}}); ok {
		t.Error("a 2-byte key read as an IPv4 address")
	}
}
