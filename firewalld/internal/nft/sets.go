package nft

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// portBytes is the length of a transport port.
const portBytes = 2

// setSpec is one set or map of the table: a set of addresses of one
// family, with intervals (the kernel's rbtree: an element is a start key
// and an end key flagged as such, one past the range) or exact keys (a
// hash), or a verdict map from addresses to "jump <group chain>".
type setSpec struct {
	name     string
	v6       bool
	interval bool
	verdicts bool
	comment  string
}

// peerSetSpec is the definition of a peer set.
func peerSetSpec(name string, v6 bool) setSpec {
	return setSpec{name: name, v6: v6, interval: true}
}

// keyLen is the key's length: an address.
func (s setSpec) keyLen() int {
	if s.v6 {
		return 16
	}
	return 4
}

// dataLen bounds the nested data attribute of one element (see
// nftutil.ElemBytes): for a verdict map, a verdict code with a group
// chain's name.
func (s setSpec) dataLen() int {
	if !s.verdicts {
		return 0
	}
	// NFTA_DATA_VERDICT { NFTA_VERDICT_CODE u32, NFTA_VERDICT_CHAIN name\0 }
	return 4 + 8 + 4 + nftutil.Pad4(len("out-00000000")+1)
}

// perMessage is how many elements of s go in one message.
func (s setSpec) perMessage() int {
	n := nftutil.PerMessage(nftutil.ElemBytes(s.keyLen(), s.dataLen()))
	if s.interval {
		n /= 2 // a range is a start and an end element
	}
	return max(n, 1)
}

// chunks splits es into the element lists of successive messages.
func (s setSpec) chunks(es []elem) [][]elem {
	return nftutil.Chunks(es, s.perMessage())
}

func (s setSpec) keyType() nftables.SetDatatype {
	if s.v6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

// nftSet is the set's definition for google/nftables. id is its id within
// a transaction (set explicitly: the library's own counter is global).
func (s setSpec) nftSet(t *nftables.Table, id uint32) *nftables.Set {
	set := &nftables.Set{
		Table:        t,
		ID:           id,
		Name:         s.name,
		Interval:     s.interval,
		IsMap:        s.verdicts,
		KeyType:      s.keyType(),
		KeyByteOrder: binaryutil.BigEndian,
		Comment:      s.comment,
	}
	if s.verdicts {
		set.DataType = nftables.TypeVerdict
	}
	return set
}
