package policy

import (
	"hash/fnv"
	"slices"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// idSpace hands out model.IDs for canonical keys (of target groups,
// identities and regions: one space, so a group and an identity never
// share a number by accident of hashing either). An ID is the key's hash
// folded to 32 bits, so the same content gets the same number in every run
// and a restarted firewalld writes nothing. Collisions are resolved by
// probing the next number, in the order of the sorted keys: the same set of
// keys gives the same numbers whatever order they were seen in, when they
// are assigned at once (a fresh space). A space kept from compile to
// compile (Compiler) gives a new key the next free number at the time: the
// same number unless it collided, so a restart rewrites elements only in
// that rare case, and no ID in use ever changes.
type idSpace struct {
	byKey map[string]model.ID
	used  map[model.ID]string
}

func newIDSpace() *idSpace {
	return &idSpace{byKey: map[string]model.ID{}, used: map[model.ID]string{}}
}

func hashID(key string) model.ID {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	s := h.Sum64()
	id := model.ID(uint32(s) ^ uint32(s>>32))
	if id == 0 {
		id = 1 // 0 is no ID
	}
	return id
}

// assign gives every key its ID; keys already assigned keep theirs.
func (s *idSpace) assign(keys []string) {
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	for _, k := range sorted {
		if _, ok := s.byKey[k]; ok {
			continue
		}
		id := hashID(k)
		for {
			if _, taken := s.used[id]; !taken {
				break
			}
			id++
			if id == 0 {
				id = 1
			}
		}
		s.byKey[k], s.used[id] = id, k
	}
}

// release forgets key, freeing its ID.
func (s *idSpace) release(key string) {
	if id, ok := s.byKey[key]; ok {
		delete(s.byKey, key)
		delete(s.used, id)
	}
}

// id returns the ID of an assigned key.
func (s *idSpace) id(key string) model.ID { return s.byKey[key] }
