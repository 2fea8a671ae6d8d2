package nftutil

import (
	"bytes"
	"slices"

	"github.com/google/nftables"
)

// Interval sets of one field (the kernel's rbtree) store a range as two
// elements: its first key, and an end element flagged as such one past its
// last key. A range that reaches the highest key has no end element (nft
// does the same).

// IntervalElements returns the kernel elements of the inclusive range
// first..last; val, if any, is the map data of the range (on the start
// element only).
func IntervalElements(first, last, val []byte) []nftables.SetElement {
	out := []nftables.SetElement{{Key: first, Val: val}}
	if next, ok := Increment(last); ok {
		out = append(out, nftables.SetElement{Key: next, IntervalEnd: true})
	}
	return out
}

// IntervalCount is how many kernel elements the range ending at last
// takes (see IntervalElements).
func IntervalCount(last []byte) int {
	if _, ok := Increment(last); ok {
		return 2
	}
	return 1
}

// Interval is a range read back from an interval set.
type Interval struct {
	// First and Last are the range's inclusive bounds.
	First, Last []byte
	// Start is the kernel's start element (its Val is the map data).
	Start nftables.SetElement
}

// Intervals turns the elements of an interval set, in any order, back into
// ranges: each start element pairs with the end element after it. An end
// element without a start (nft's sentinel at key zero) is no range; a
// start without an end reaches the highest key.
func Intervals(kes []nftables.SetElement) []Interval {
	kes = slices.Clone(kes)
	slices.SortFunc(kes, func(a, b nftables.SetElement) int {
		if c := bytes.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		// An end and a start at the same key: the end closes the range
		// before, so it sorts first.
		switch {
		case a.IntervalEnd == b.IntervalEnd:
			return 0
		case a.IntervalEnd:
			return -1
		}
		return 1
	})
	out := make([]Interval, 0, len(kes))
	for i, k := range kes {
		if k.IntervalEnd {
			continue
		}
		last := bytes.Repeat([]byte{0xff}, len(k.Key))
		if i+1 < len(kes) && kes[i+1].IntervalEnd {
			if prev, ok := Decrement(kes[i+1].Key); ok {
				last = prev
			}
		}
		out = append(out, Interval{First: k.Key, Last: last, Start: k})
	}
	return out
}

// Increment returns b+1 as a big-endian number, false on overflow.
func Increment(b []byte) ([]byte, bool) {
	n := slices.Clone(b)
	for i := len(n) - 1; i >= 0; i-- {
		n[i]++
		if n[i] != 0 {
			return n, true
		}
	}
	return nil, false
}

// Decrement returns b-1 as a big-endian number, false on underflow.
func Decrement(b []byte) ([]byte, bool) {
	n := slices.Clone(b)
	for i := len(n) - 1; i >= 0; i-- {
		n[i]--
		if n[i] != 0xff {
			return n, true
		}
	}
	return nil, false
}
