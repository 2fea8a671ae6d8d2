package nftutil

import (
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func TestReg32(t *testing.T) {
	// The kernel reports registers in a canonical form; rules must be
	// written in it or a read-back never compares equal.
	for i, want := range map[uint32]uint32{0: 1, 1: 9, 2: 10, 3: 11, 4: 2, 5: 13, 6: 14, 8: 3, 15: 23} {
		if got := Reg32(i); got != want {
			t.Errorf("Reg32(%d) = %d, want %d", i, got, want)
		}
	}
}

func TestSameExprs(t *testing.T) {
	inet := nftables.TableFamilyINet
	written := []expr.Any{
		&expr.Lookup{SourceRegister: 1, SetName: "s", SetID: 7},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
	read := []expr.Any{
		&expr.Lookup{SourceRegister: 1, SetName: "s"}, // no set id outside a transaction
		&expr.Counter{Packets: 3, Bytes: 180},         // counted meanwhile
		&expr.Verdict{Kind: expr.VerdictDrop},
	}
	if !SameExprs(inet, written, read) {
		t.Fatal("a rule read back differs from the one written only by set id and counts, and compares unequal")
	}
	for name, other := range map[string][]expr.Any{
		"another set":  {&expr.Lookup{SourceRegister: 1, SetName: "t"}, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}},
		"inverted":     {&expr.Lookup{SourceRegister: 1, SetName: "s", Invert: true}, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}},
		"accept":       {&expr.Lookup{SourceRegister: 1, SetName: "s"}, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictAccept}},
		"shorter":      {&expr.Lookup{SourceRegister: 1, SetName: "s"}, &expr.Counter{}},
		"no counter":   {&expr.Lookup{SourceRegister: 1, SetName: "s"}, &expr.Verdict{Kind: expr.VerdictDrop}, &expr.Verdict{Kind: expr.VerdictDrop}},
		"another dreg": {&expr.Lookup{SourceRegister: 1, DestRegister: 9, IsDestRegSet: true, SetName: "s"}, &expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}},
	} {
		if SameExprs(inet, written, other) {
			t.Errorf("%s: compares equal", name)
		}
	}
	// Marshalling does not change the caller's expressions.
	if l := written[0].(*expr.Lookup); l.SetID != 7 {
		t.Fatal("SameExprs cleared the caller's set id")
	}
}
