package nft

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// setKind says how a set stores its elements in the kernel.
type setKind uint8

const (
	// hashSet: exact keys.
	hashSet setKind = iota
	// rangeSet: one field, intervals (the kernel's rbtree): an element is a
	// start key and an end key flagged as such, one past the range.
	rangeSet
	// concatRangeSet: concatenated fields with intervals (the kernel's
	// pipapo): an element is a key and an inclusive end key.
	concatRangeSet
)

// field is one part of a set's key.
type field uint8

const (
	fieldAddr field = iota
	fieldMark
	fieldProto
	fieldPort
)

// dataKind is what a map maps to; noData for a plain set.
type dataKind uint8

const (
	noData dataKind = iota
	// markData: a model.ID (type mark, 32 bits).
	markData
	// verdictData: a verdict, "jump <deny chain>".
	verdictData
)

// Field lengths without padding (each is padded to 4 in a concatenated key).
const (
	markBytes  = 4
	protoBytes = 1
	portBytes  = 2
)

// setSpec is one set or map of the table.
type setSpec struct {
	name    string
	v6      bool
	kind    setKind
	fields  []field
	data    dataKind
	comment string
}

func (s setSpec) addrLen() int {
	if s.v6 {
		return 16
	}
	return 4
}

// fieldLen is the length of a field's data (not padded).
func (s setSpec) fieldLen(f field) int {
	switch f {
	case fieldMark:
		return markBytes
	case fieldProto:
		return protoBytes
	case fieldPort:
		return portBytes
	}
	return s.addrLen()
}

// keyLen is the key's length: every field padded to 4 bytes (registers).
func (s setSpec) keyLen() int {
	n := 0
	for _, f := range s.fields {
		n += nftutil.Pad4(s.fieldLen(f))
	}
	return n
}

// dataLen bounds the nested data attribute of one element (see
// nftutil.ElemBytes): a mark, or a verdict code with a deny chain's name.
func (s setSpec) dataLen() int {
	switch s.data {
	case markData:
		return markBytes
	case verdictData:
		// NFTA_DATA_VERDICT { NFTA_VERDICT_CODE u32, NFTA_VERDICT_CHAIN name\0 }
		return 4 + 8 + 4 + nftutil.Pad4(len(denyChainName(0, 0))+1)
	}
	return 0
}

// perMessage is how many elements of s go in one message.
func (s setSpec) perMessage() int {
	n := nftutil.PerMessage(nftutil.ElemBytes(s.keyLen(), s.dataLen()))
	if s.kind == rangeSet {
		n /= 2 // a range is a start and an end element
	}
	return max(n, 1)
}

// chunks splits es into the element lists of successive messages.
func (s setSpec) chunks(es []elem) [][]elem {
	return nftutil.Chunks(es, s.perMessage())
}

func (s setSpec) keyType() nftables.SetDatatype {
	types := make([]nftables.SetDatatype, len(s.fields))
	for i, f := range s.fields {
		switch f {
		case fieldMark:
			types[i] = nftables.TypeMark
		case fieldProto:
			types[i] = nftables.TypeInetProto
		case fieldPort:
			types[i] = nftables.TypeInetService
		default:
			types[i] = nftables.TypeIPAddr
			if s.v6 {
				types[i] = nftables.TypeIP6Addr
			}
		}
	}
	if len(types) == 1 {
		return types[0]
	}
	return nftables.MustConcatSetType(types...)
}

func (s setSpec) dataType() nftables.SetDatatype {
	switch s.data {
	case markData:
		return nftables.TypeMark
	case verdictData:
		return nftables.TypeVerdict
	}
	return nftables.SetDatatype{}
}

// nftSet is the set's definition for google/nftables. id is its id within
// a transaction (set explicitly: the library's own counter is global).
func (s setSpec) nftSet(t *nftables.Table, id uint32) *nftables.Set {
	return &nftables.Set{
		Table:    t,
		ID:       id,
		Name:     s.name,
		Interval: s.kind != hashSet,
		// As nft does: the concat flag (and field lengths) only where the
		// kernel needs them, for concatenated intervals.
		Concatenation: s.kind == concatRangeSet,
		IsMap:         s.data != noData,
		KeyType:       s.keyType(),
		DataType:      s.dataType(),
		KeyByteOrder:  binaryutil.BigEndian,
		Comment:       s.comment,
	}
}
