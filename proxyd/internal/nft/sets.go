package nft

import (
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// Set names.
const (
	setVIPs4       = "vips4"
	setVIPs6       = "vips6"
	setLocalVIPs4  = "vips_local4"
	setLocalVIPs6  = "vips_local6"
	setPodCIDRs4   = "pod_cidrs4"
	setPodCIDRs6   = "pod_cidrs6"
	setRestricted4 = "lb_restricted4"
	setRestricted6 = "lb_restricted6"
	setAllowed4    = "lb_allowed4"
	setAllowed6    = "lb_allowed6"
)

// Lengths of the protocol and port fields (each padded to 4 in a key).
const (
	ipProtoFieldBytes = 1
	portFieldBytes    = 2
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
	fieldProto
	fieldPort
)

// setSpec is one set of the table.
type setSpec struct {
	name    string
	v6      bool
	kind    setKind
	fields  []field
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
	case fieldProto:
		return ipProtoFieldBytes
	case fieldPort:
		return portFieldBytes
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

func (s setSpec) keyType() nftables.SetDatatype {
	types := make([]nftables.SetDatatype, len(s.fields))
	for i, f := range s.fields {
		switch f {
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
		KeyType:       s.keyType(),
		KeyByteOrder:  binaryutil.BigEndian,
		Comment:       s.comment,
	}
}
