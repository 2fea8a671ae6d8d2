package vip

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

func addrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func mustList(t *testing.T, i Interface) []netip.Addr {
	t.Helper()
	got, err := i.List()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestFakeSemantics(t *testing.T) {
	f := NewFake()
	if err := f.AddAll(addrs("2001:db8:19::1", "198.19.0.2", "198.19.0.1")); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(netip.MustParseAddr("198.19.0.1")); err != nil {
		t.Fatalf("adding what is there: %v", err)
	}
	if got, want := mustList(t, f), addrs("198.19.0.1", "198.19.0.2", "2001:db8:19::1"); !slices.Equal(got, want) {
		t.Fatalf("List = %v, want %v (sorted)", got, want)
	}
	if err := f.Delete(netip.MustParseAddr("198.19.0.99")); err != nil {
		t.Fatalf("deleting what is not there: %v", err)
	}
	err := f.DeleteAll([]netip.Addr{netip.MustParseAddr("198.19.0.2"), {}, netip.MustParseAddr("::ffff:198.19.0.1")})
	if !errors.Is(err, ErrInvalid) || len(FailedVIPs(err)) != 2 {
		t.Fatalf("DeleteAll with two bad VIPs: %v", err)
	}
	if got, want := mustList(t, f), addrs("198.19.0.1", "2001:db8:19::1"); !slices.Equal(got, want) {
		t.Fatalf("the good VIP of a failed batch is applied: List = %v, want %v", got, want)
	}
	var ve *VIPError
	if err := f.Add(netip.Addr{}); !errors.As(err, &ve) || ve.Op != "add" {
		t.Fatalf("Add(invalid) = %v, want a *VIPError", err)
	}
	want := map[Op]int{OpAddAll: 1, OpAdd: 2, OpList: 2, OpDelete: 1, OpDeleteAll: 1}
	for op, n := range want {
		if f.Count(op) != n {
			t.Errorf("Count(%v) = %d, want %d", op, f.Count(op), n)
		}
	}
	// 3 + 1 + 1 + 1 valid VIPs were written.
	if f.RouteWrites() != 6 {
		t.Errorf("RouteWrites = %d, want 6", f.RouteWrites())
	}
}

func TestFakeFailNextSeedReset(t *testing.T) {
	f := NewFake()
	if err := f.Seed(addrs("198.19.0.1")...); err != nil {
		t.Fatal(err)
	}
	if len(f.Counts()) != 0 || f.RouteWrites() != 0 {
		t.Fatalf("Seed counted: %v %d", f.Counts(), f.RouteWrites())
	}
	boom := errors.New("boom")
	f.FailNext(OpAddAll, boom)
	if err := f.AddAll(addrs("198.19.0.2")); err != boom {
		t.Fatalf("AddAll = %v, want the queued failure", err)
	}
	if got := mustList(t, f); !slices.Equal(got, addrs("198.19.0.1")) {
		t.Fatalf("a failed call changed the VIPs: %v", got)
	}
	if err := f.AddAll(addrs("198.19.0.2")); err != nil {
		t.Fatalf("second AddAll: %v (one failure queued)", err)
	}
	f.Reset()
	if len(f.Counts()) != 0 || f.RouteWrites() != 0 || len(mustList(t, f)) != 2 {
		t.Fatal("Reset must forget counts, keep VIPs")
	}
	if OpDeleteAll.String() != "DeleteAll" || Op(99).String() != "Op(99)" {
		t.Error("Op.String")
	}
}
