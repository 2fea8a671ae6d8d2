package policy

import (
	"testing"
)

func TestIDsAreStableAndOrderIndependent(t *testing.T) {
	keys := []string{"group\x00ns/a", "ident\x00x", "region\x00y", "ident\x00z"}
	a, b := newIDSpace(), newIDSpace()
	a.assign(keys)
	b.assign([]string{keys[3], keys[1]})
	b.assign([]string{keys[2], keys[0], keys[1]})
	seen := map[uint32]bool{}
	for _, k := range keys {
		if a.id(k) == 0 {
			t.Fatalf("key %q has no ID", k)
		}
		if a.id(k) != hashID(k) {
			t.Errorf("key %q: ID %v, want its hash %v (no collision here)", k, a.id(k), hashID(k))
		}
		if seen[uint32(a.id(k))] {
			t.Errorf("ID %v given twice", a.id(k))
		}
		seen[uint32(a.id(k))] = true
		if a.id(k) != b.id(k) {
			t.Errorf("key %q: %v in one space, %v in another", k, a.id(k), b.id(k))
		}
	}
}

func TestIDCollisionsProbeInKeyOrder(t *testing.T) {
	s := newIDSpace()
	// Force a collision: occupy the hash of "b" with another key.
	s.used[hashID("b")] = "other"
	s.assign([]string{"b", "a"})
	if s.id("b") == hashID("b") {
		t.Fatal("a taken ID was given again")
	}
	if s.id("b") != hashID("b")+1 && hashID("a") != hashID("b")+1 {
		t.Errorf("collision not resolved by probing the next number: %v", s.id("b"))
	}
}
