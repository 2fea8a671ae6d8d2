package nftutil

import (
	"bytes"
	"slices"
	"testing"

	"github.com/google/nftables"
)

func TestIntervalRoundTrip(t *testing.T) {
	ranges := []struct{ first, last, val []byte }{
		{[]byte{198, 18, 0, 0}, []byte{198, 18, 0, 255}, []byte{1, 0, 0, 0}},
		{[]byte{198, 18, 1, 0}, []byte{198, 18, 1, 0}, []byte{2, 0, 0, 0}}, // adjacent: its start shares the key of the end before
		{[]byte{224, 0, 0, 0}, []byte{255, 255, 255, 255}, nil},            // reaches the top: no end element
	}
	var kes []nftables.SetElement
	n := 0
	for _, r := range ranges {
		es := IntervalElements(r.first, r.last, r.val)
		if len(es) != IntervalCount(r.last) {
			t.Fatalf("%v..%v: %d elements, IntervalCount %d", r.first, r.last, len(es), IntervalCount(r.last))
		}
		n += len(es)
		kes = append(kes, es...)
	}
	if n != 5 {
		t.Fatalf("%d kernel elements, want 5", n)
	}
	// The kernel lists them in its own order (rbtree: reverse), with nft's
	// sentinel end at zero.
	slices.Reverse(kes)
	kes = append(kes, nftables.SetElement{Key: []byte{0, 0, 0, 0}, IntervalEnd: true})
	got := Intervals(kes)
	if len(got) != len(ranges) {
		t.Fatalf("%d intervals back, want %d: %v", len(got), len(ranges), got)
	}
	for i, r := range ranges {
		g := got[i]
		if !bytes.Equal(g.First, r.first) || !bytes.Equal(g.Last, r.last) || !bytes.Equal(g.Start.Val, r.val) {
			t.Errorf("interval %d: %v..%v (%v), want %v..%v (%v)", i, g.First, g.Last, g.Start.Val, r.first, r.last, r.val)
		}
	}
}

func TestIncrementDecrement(t *testing.T) {
	if b, ok := Increment([]byte{1, 0xff}); !ok || !bytes.Equal(b, []byte{2, 0}) {
		t.Errorf("Increment(01ff) = %x, %v", b, ok)
	}
	if _, ok := Increment([]byte{0xff, 0xff}); ok {
		t.Error("Increment(ffff) did not overflow")
	}
	if b, ok := Decrement([]byte{2, 0}); !ok || !bytes.Equal(b, []byte{1, 0xff}) {
		t.Errorf("Decrement(0200) = %x, %v", b, ok)
	}
	if _, ok := Decrement([]byte{0, 0}); ok {
		t.Error("Decrement(0000) did not underflow")
	}
	in := []byte{1, 2}
	Increment(in)
	if !bytes.Equal(in, []byte{1, 2}) {
		t.Error("Increment changed its argument")
	}
}
