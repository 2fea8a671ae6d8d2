package nft

import (
	"bytes"
	"reflect"
	"slices"
	"testing"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
	"github.com/nodenet/nodenet/proxyd/internal/model"
)

func TestVIPKeyLayout(t *testing.T) {
	// Each field padded to a 4-byte register, as the rules load them
	// (compare "nft --debug=netlink list set": 0a0013c6 00000006 00005000).
	got := vipKey(key("198.19.0.10", 80, model.TCP))
	want := []byte{198, 19, 0, 10, 6, 0, 0, 0, 0, 80, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("key % x, want % x", got, want)
	}
	got = vipKey(key("2001:db8:19::30", 53, model.UDP))
	if len(got) != 24 || got[16] != 17 || got[20] != 0 || got[21] != 53 {
		t.Fatalf("IPv6 key % x", got)
	}
	for _, s := range newRuleset().sets {
		if s.kind == hashSet && s.keyLen() != len(vipKey(key(map[bool]string{false: "198.19.0.1", true: "2001:db8::1"}[s.v6], 1, model.TCP))) {
			t.Errorf("set %s: key length %d does not match the encoding", s.name, s.keyLen())
		}
	}
}

func TestEncodingRoundTrip(t *testing.T) {
	rs := newRuleset()
	d := Build(model.State{Services: []*model.VirtualService{
		vs(key("198.19.0.10", 80, model.TCP), model.LoadBalancer, local, restricted("198.18.0.0/24", "198.18.4.0/22")),
		vs(key("2001:db8:19::10", 443, model.TCP), model.LoadBalancer, restricted("::/0")),
		vs(key("198.19.0.11", 53, model.UDP), model.ClusterIP),
	}}, prefixes("198.18.128.0/24", "198.18.130.0/24", "224.0.0.0/3", "2001:db8:80::/64"))
	c := encode(d)
	for _, s := range rs.sets {
		es := c.sorted(s.name)
		kes := s.kernelElems(es)
		if n := s.kernelCount(es); n != len(kes) {
			t.Errorf("set %s: kernelCount %d, kernelElems %d", s.name, n, len(kes))
		}
		// The kernel hands elements back in its own order (rbtree: reverse).
		slices.Reverse(kes)
		back := s.fromKernel(kes)
		slices.SortFunc(back, compareElems)
		if !reflect.DeepEqual(back, es) && !(len(back) == 0 && len(es) == 0) {
			t.Errorf("set %s: round trip\n got %v\nwant %v", s.name, back, es)
		}
	}

	// 224.0.0.0/3 reaches the last address: no end element, as nft does.
	pods, _ := rs.set(setPodCIDRs4)
	kes := pods.kernelElems(c.sorted(setPodCIDRs4))
	if n := len(kes); n != 5 {
		t.Fatalf("pod_cidrs4: %d kernel elements, want 5 (two ranges with ends, one without): %v", n, kes)
	}
	if last := kes[len(kes)-1]; last.IntervalEnd || !bytes.Equal(last.Key, []byte{224, 0, 0, 0}) {
		t.Fatalf("last element %v, want the start 224.0.0.0 and no end", last)
	}
}

func TestRangeSetFromKernelIgnoresSentinel(t *testing.T) {
	// nft adds an interval end at address zero; it is not proxyd's.
	s, _ := newRuleset().set(setPodCIDRs4)
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

func TestRender(t *testing.T) {
	rs := newRuleset()
	d := Build(model.State{Services: []*model.VirtualService{
		vs(key("198.19.0.30", 443, model.TCP), model.LoadBalancer, local, restricted("198.18.0.0/24", "198.18.1.7/32")),
		vs(key("2001:db8:19::10", 53, model.UDP), model.ClusterIP),
		vs(key("198.19.0.40", 9999, model.SCTP), model.ClusterIP),
	}}, prefixes("198.18.128.0/24"))
	got := rs.render(encode(d))
	want := map[string][]string{
		setVIPs4:       {"198.19.0.30 . tcp . 443", "198.19.0.40 . sctp . 9999"},
		setVIPs6:       {"2001:db8:19::10 . udp . 53"},
		setLocalVIPs4:  {"198.19.0.30 . tcp . 443"},
		setLocalVIPs6:  {},
		setPodCIDRs4:   {"198.18.128.0/24"},
		setPodCIDRs6:   {},
		setRestricted4: {"198.19.0.30 . tcp . 443"},
		setRestricted6: {},
		setAllowed4:    {"198.19.0.30 . tcp . 443 . 198.18.0.0/24", "198.19.0.30 . tcp . 443 . 198.18.1.7"},
		setAllowed6:    {},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("render:\n got %v\nwant %v", got, want)
	}
}

func TestRulesetRegisters(t *testing.T) {
	// The kernel reports registers in a canonical form; rules must be
	// written in it or a read-back never compares equal.
	for i, want := range map[uint32]uint32{0: 1, 1: 9, 2: 10, 3: 11, 4: 2, 5: 13, 6: 14, 8: 3} {
		if got := reg32(i); got != want {
			t.Errorf("reg32(%d) = %d, want %d", i, got, want)
		}
	}
	rs := newRuleset()
	if len(rs.sets) != 10 || len(rs.chains) != 3 {
		t.Fatalf("%d sets, %d chains", len(rs.sets), len(rs.chains))
	}
	for _, c := range rs.chains {
		for _, r := range c.rules {
			for _, e := range r.exprs {
				if _, err := nftutil.MarshalExpr(nftables.TableFamilyINet, e); err != nil {
					t.Errorf("chain %s, rule %q: %v", c.name, r.comment, err)
				}
			}
		}
	}
}
