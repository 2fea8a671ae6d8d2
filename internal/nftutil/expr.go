package nftutil

import (
	"bytes"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Reg32 is the i-th 32-bit register (NFT_REG32_00 + i) in the form the
// kernel reports it: it dumps a 32-bit register that starts a 128-bit one
// as that one (32-bit register 0 is NFT_REG_1, 4 is NFT_REG_2, ...). Rules
// written with it read back equal to what was written.
func Reg32(i uint32) uint32 {
	if i%4 == 0 {
		return unix.NFT_REG_1 + i/4
	}
	return unix.NFT_REG32_00 + i
}

// Native32 is v in host byte order, as registers hold meta values, ct
// state bits and marks.
func Native32(v uint32) []byte { return binaryutil.NativeEndian.PutUint32(v) }

// MarshalExpr is e as the kernel receives it, less what differs between a
// rule written and the same rule read back: a lookup's set id (it exists
// only inside a transaction) and a counter's values.
func MarshalExpr(family nftables.TableFamily, e expr.Any) ([]byte, error) {
	switch x := e.(type) {
	case *expr.Lookup:
		c := *x
		c.SetID = 0
		e = &c
	case *expr.Counter:
		e = &expr.Counter{}
	}
	return expr.Marshal(byte(family), e)
}

// SameExprs reports whether the expressions of a rule read back from the
// kernel (got) are the ones written (want). google/nftables skips
// expressions it does not know when decoding: a rule changed only by such
// an expression compares equal.
func SameExprs(family nftables.TableFamily, want, got []expr.Any) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		a, err := MarshalExpr(family, want[i])
		if err != nil {
			return false
		}
		b, err := MarshalExpr(family, got[i])
		if err != nil || !bytes.Equal(a, b) {
			return false
		}
	}
	return true
}
