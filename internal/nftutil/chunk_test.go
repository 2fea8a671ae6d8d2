package nftutil

import (
	"reflect"
	"testing"
)

func TestChunks(t *testing.T) {
	for _, tc := range []struct {
		n, per int
		want   []int // chunk lengths
	}{
		{0, 3, nil},
		{1, 3, []int{1}},
		{3, 3, []int{3}},
		{7, 3, []int{3, 3, 1}},
		{2, 0, []int{1, 1}}, // a bound below one counts as one
	} {
		es := make([]int, tc.n)
		for i := range es {
			es[i] = i
		}
		var lens []int
		var flat []int
		for _, c := range Chunks(es, tc.per) {
			lens = append(lens, len(c))
			flat = append(flat, c...)
		}
		if !reflect.DeepEqual(lens, tc.want) {
			t.Errorf("Chunks(%d elements, %d): lengths %v, want %v", tc.n, tc.per, lens, tc.want)
		}
		if len(flat) != tc.n || (tc.n > 0 && !reflect.DeepEqual(flat, es)) {
			t.Errorf("Chunks(%d elements, %d): %v, not the elements in order", tc.n, tc.per, flat)
		}
	}
	// A chunk cannot grow into the next one.
	es := []int{1, 2, 3, 4}
	c := Chunks(es, 2)
	_ = append(c[0], 99)
	if es[2] != 3 {
		t.Fatal("appending to a chunk overwrote the next one")
	}
}

func TestPerMessageFitsTheAttribute(t *testing.T) {
	for _, tc := range []struct{ key, data int }{{4, 0}, {16, 0}, {12, 0}, {40, 0}, {4, 4}, {16, 32}, {70000, 0}} {
		per := PerMessage(ElemBytes(tc.key, tc.data))
		if per < 1 {
			t.Fatalf("key %d, data %d: %d per message", tc.key, tc.data, per)
		}
		if per > 1 && per*ElemBytes(tc.key, tc.data) > MaxElemListBytes {
			t.Errorf("key %d, data %d: %d elements of %d bytes exceed %d", tc.key, tc.data, per, ElemBytes(tc.key, tc.data), MaxElemListBytes)
		}
	}
	// proxyd's numbers (a 12-byte key: address . proto . port).
	if got := PerMessage(ElemBytes(12, 0)); got != 1153 {
		t.Errorf("12-byte keys: %d per message, want 1153", got)
	}
}
