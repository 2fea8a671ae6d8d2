package nft

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"golang.org/x/sys/unix"
)

func TestElementEncoding(t *testing.T) {
	// Each field padded to a 4-byte register, as the rules load them
	// (compare "nft --debug=netlink list set").
	for _, tc := range []struct {
		what      string
		set       string
		e         elem
		ok        bool
		key, end  []byte
		val       []byte
		valString string
	}{
		{what: "known IPv4", set: "known_local4", key: []byte{198, 18, 128, 2}},
		{what: "known IPv6", set: "known_local6", key: addr("2001:db8:80::2").AsSlice()},
		{what: "ingress group", set: "ing_group4", key: []byte{198, 18, 128, 2}, val: []byte{0, 0, 0xa0, 0x01}},
		{what: "ingress deny", set: "ing_deny4", key: []byte{198, 18, 128, 2}, valString: "deny-in-0000a001"},
		{what: "egress group", set: "eg_group6", key: addr("2001:db8:80::2").AsSlice(), val: []byte{0, 0, 0xa0, 0x02}},
		{what: "egress deny", set: "eg_deny6", key: addr("2001:db8:80::2").AsSlice(), valString: "deny-eg-0000a002"},
		{what: "identity", set: "pod_ident4", key: []byte{198, 18, 140, 7}, val: []byte{0, 0, 0xb0, 0x02}},
		{what: "region", set: "region_ident4", key: []byte{198, 18, 0, 0}, end: []byte{198, 18, 0, 255}, val: []byte{0, 0, 0xc0, 0x01}},
		{what: "local CIDR", set: "local_cidrs4", key: []byte{198, 18, 128, 0}, end: []byte{198, 18, 128, 255}},
		{what: "allow", set: "ing_allow",
			key: []byte{0, 0, 0xa0, 0x01, 0, 0, 0xc0, 0x01, 6, 0, 0, 0, 0x1f, 0x40, 0, 0},
			end: []byte{0, 0, 0xa0, 0x01, 0, 0, 0xc0, 0x01, 6, 0, 0, 0, 0x23, 0x27, 0, 0}},
		{what: "any", set: "ing_any",
			key: []byte{0, 0, 0xa0, 0x01, 17, 0, 0, 0, 0, 53, 0, 0},
			end: []byte{0, 0, 0xa0, 0x01, 17, 0, 0, 0, 0, 53, 0, 0}},
	} {
		d := baseDatapath()
		d.EgressGroup[addr("2001:db8:80::2")] = groupDB
		c := encode(d)
		want := elem{key: string(tc.key), end: string(tc.end), val: string(tc.val) + tc.valString}
		if _, ok := c.elems[tc.set][want]; !ok {
			t.Errorf("%s: %s has no element % x / % x / %q; it has %v", tc.what, tc.set, tc.key, tc.end, want.val, c.elems.sorted(tc.set))
		}
		s, _ := newRuleset(logConfig{}).set(tc.set)
		if s.keyLen() != len(tc.key) {
			t.Errorf("%s: set %s key length %d, the encoding has %d", tc.what, tc.set, s.keyLen(), len(tc.key))
		}
	}
}

// kernelRoundTrip turns the elements of every set into what the kernel
// stores and back, as a read would get them (the kernel's own order).
func TestKernelElementsRoundTrip(t *testing.T) {
	rs := newRuleset(logConfig{})
	d := baseDatapath()
	// A region reaching the last address: no end element.
	d.Regions = append(d.Regions, model.Region{From: addr("224.0.0.0"), To: addr("255.255.255.255"), Ident: identRest})
	c := encode(d)
	for _, s := range rs.sets {
		es := c.elems.sorted(s.name)
		kes := s.kernelElems(es, true)
		if n := s.kernelCount(es); n != len(kes) {
			t.Errorf("set %s: kernelCount %d, kernelElems %d", s.name, n, len(kes))
		}
		// The kernel hands verdicts back as raw attributes in Val.
		for i, k := range kes {
			if k.VerdictData != nil {
				kes[i].Val = rawVerdict(t, k.VerdictData.Chain)
				kes[i].VerdictData = nil
			}
		}
		slices.Reverse(kes)
		back := s.fromKernel(kes)
		slices.SortFunc(back, compareElems)
		if !reflect.DeepEqual(back, es) && !(len(back) == 0 && len(es) == 0) {
			t.Errorf("set %s: round trip\n got %v\nwant %v", s.name, back, es)
		}
		// Deletes name keys only.
		for _, k := range s.kernelElems(es, false) {
			if k.Val != nil || k.VerdictData != nil {
				t.Errorf("set %s: a delete carries data: %+v", s.name, k)
			}
		}
	}
	regions, _ := rs.set("region_ident4")
	kes := regions.kernelElems(c.elems.sorted("region_ident4"), true)
	if last := kes[len(kes)-1]; last.IntervalEnd || !bytes.Equal(last.Key, []byte{224, 0, 0, 0}) || !bytes.Equal(last.Val, mark(identRest)) {
		t.Fatalf("last region element %+v, want the start 224.0.0.0 with its identity and no end", last)
	}
}

// rawVerdict is a verdict map value as google/nftables v0.3.0 reads it
// from the kernel: the attributes of NFTA_DATA_VERDICT, undecoded.
func rawVerdict(t *testing.T, chain string) []byte {
	t.Helper()
	code := make([]byte, 4)
	jump := int32(unix.NFT_JUMP)
	binary.BigEndian.PutUint32(code, uint32(jump))
	b, err := netlink.MarshalAttributes([]netlink.Attribute{
		{Type: unix.NFTA_VERDICT_CODE, Data: code},
		{Type: unix.NFTA_VERDICT_CHAIN, Data: []byte(chain + "\x00")},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerdictChain(t *testing.T) {
	if got := verdictChain(rawVerdict(t, "deny-in-0000a001")); got != "deny-in-0000a001" {
		t.Fatalf("jump decoded as %q", got)
	}
	accept, _ := netlink.MarshalAttributes([]netlink.Attribute{{Type: unix.NFTA_VERDICT_CODE, Data: []byte{0, 0, 0, 1}}})
	for _, b := range [][]byte{accept, {1, 2, 3}, nil} {
		if got := verdictChain(b); got == "" || parseDenyChainOK(got) {
			t.Errorf("% x decoded as %q: must be no deny chain", b, got)
		}
	}
}

func parseDenyChainOK(s string) bool { _, _, ok := parseDenyChain(s); return ok }

func TestCIDRsMerged(t *testing.T) {
	c := elems{}
	cidrElems(c, prefixes("198.18.129.0/24", "198.18.128.0/24", "198.18.128.64/26", "198.18.200.0/24", "2001:db8:80::/64", "2001:db8:80::/48"))
	got := newRuleset(logConfig{}).render(c)
	if want := []string{"198.18.128.0/23", "198.18.200.0/24"}; !reflect.DeepEqual(got["local_cidrs4"], want) {
		t.Errorf("local_cidrs4 %v, want %v", got["local_cidrs4"], want)
	}
	if want := []string{"2001:db8:80::/48"}; !reflect.DeepEqual(got["local_cidrs6"], want) {
		t.Errorf("local_cidrs6 %v, want %v", got["local_cidrs6"], want)
	}
}

func TestRender(t *testing.T) {
	rs := newRuleset(logConfig{})
	s, _ := rs.set("eg_allow")
	e := elem{
		key: string([]byte{0, 0, 0, 1, 0, 0, 0, 2, 6, 0, 0, 0, 0, 80, 0, 0}),
		end: string([]byte{0, 0, 0, 1, 0, 0, 0, 2, 17, 0, 0, 0, 0, 90, 0, 0}),
	}
	if got, want := s.render(e), "0x00000001 . 0x00000002 . tcp-udp . 80-90"; got != want {
		t.Errorf("render %q, want %q", got, want)
	}
	if got := s.render(elem{key: "short"}); got != `"short"` {
		t.Errorf("a foreign key rendered as %q", got)
	}
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestIntervalReadIgnoresSentinel(t *testing.T) {
	// nft adds an interval end at address zero to a set it creates; it
	// is not firewalld's.
	s, _ := newRuleset(logConfig{}).set("local_cidrs4")
	got := s.fromKernel([]nftables.SetElement{
		{Key: []byte{198, 18, 129, 0}, IntervalEnd: true},
		{Key: []byte{198, 18, 128, 0}},
		{Key: []byte{0, 0, 0, 0}, IntervalEnd: true},
	})
	want := []elem{{key: string([]byte{198, 18, 128, 0}), end: string([]byte{198, 18, 128, 255})}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
