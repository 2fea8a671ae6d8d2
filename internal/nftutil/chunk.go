package nftutil

// MaxElemListBytes bounds the element list of one netlink message: it is
// one netlink attribute, whose length is 16 bits (and google/nftables
// truncates a longer one silently). A set's elements are spread over as
// many messages of the same transaction as they need.
const MaxElemListBytes = 60000

// ElemBytes is an upper bound of the bytes one kernel element takes in an
// element list: the list entry, flags, key and end key (each an attribute
// with a 4-byte header) and, when dataLen > 0, the data attribute holding
// dataLen bytes of nested data (a map's value, a verdict with its chain).
func ElemBytes(keyLen, dataLen int) int {
	n := 28 + 2*keyLen
	if dataLen > 0 {
		n += 8 + Pad4(dataLen)
	}
	return n
}

// PerMessage is how many elements of elemBytes (see ElemBytes) go in one
// message; at least one.
func PerMessage(elemBytes int) int {
	return max(1, MaxElemListBytes/max(1, elemBytes))
}

// Chunks splits es into lists of at most n (n < 1 counts as 1), the element
// lists of successive messages. It returns nil for an empty es.
func Chunks[T any](es []T, n int) [][]T {
	n = max(n, 1)
	var out [][]T
	for len(es) > n {
		out = append(out, es[:n:n])
		es = es[n:]
	}
	if len(es) > 0 {
		out = append(out, es)
	}
	return out
}

// Pad4 rounds n up to a multiple of 4: the length of a key field padded to
// a 32-bit register, or of a netlink attribute's payload.
func Pad4(n int) int { return (n + 3) &^ 3 }
