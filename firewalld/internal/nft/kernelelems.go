package nft

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/nodenet/nodenet/internal/nftutil"
	"golang.org/x/sys/unix"
)

// kernelElems is how the kernel stores es in set s; withData false leaves
// map values out (a delete names keys only).
func (s setSpec) kernelElems(es []elem, withData bool) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(es)*2)
	for _, e := range es {
		var val []byte
		var verdict *expr.Verdict
		if withData {
			switch s.data {
			case markData:
				val = []byte(e.val)
			case verdictData:
				verdict = &expr.Verdict{Kind: expr.VerdictJump, Chain: e.val}
			}
		}
		switch s.kind {
		case hashSet:
			out = append(out, nftables.SetElement{Key: []byte(e.key), Val: val, VerdictData: verdict})
		case rangeSet:
			out = append(out, nftutil.IntervalElements([]byte(e.key), []byte(e.end), val)...)
		case concatRangeSet:
			out = append(out, nftables.SetElement{Key: []byte(e.key), KeyEnd: []byte(e.end)})
		}
	}
	return out
}

// kernelCount is how many kernel elements es take.
func (s setSpec) kernelCount(es []elem) int {
	if s.kind != rangeSet {
		return len(es)
	}
	n := 0
	for _, e := range es {
		n += nftutil.IntervalCount([]byte(e.end))
	}
	return n
}

// fromKernel turns the kernel's elements of set s back into firewalld's.
func (s setSpec) fromKernel(kes []nftables.SetElement) []elem {
	out := make([]elem, 0, len(kes))
	switch s.kind {
	case hashSet:
		for _, k := range kes {
			e := elem{key: string(k.Key)}
			switch s.data {
			case markData:
				e.val = string(k.Val)
			case verdictData:
				e.val = verdictChain(k.Val)
			}
			out = append(out, e)
		}
	case rangeSet:
		for _, r := range nftutil.Intervals(kes) {
			e := elem{key: string(r.First), end: string(r.Last)}
			if s.data == markData {
				e.val = string(r.Start.Val)
			}
			out = append(out, e)
		}
	case concatRangeSet:
		for _, k := range kes {
			end := k.KeyEnd
			if len(end) == 0 {
				end = k.Key
			}
			out = append(out, elem{key: string(k.Key), end: string(end)})
		}
	}
	return out
}

// verdictChain decodes a verdict map value as google/nftables v0.3.0 reads
// it back (the raw attributes of NFTA_DATA_VERDICT in SetElement.Val; it
// does not fill VerdictData): the chain a jump goes to. Anything else
// becomes a value no element of firewalld's has, so that it is replaced.
func verdictChain(b []byte) string {
	attrs, err := netlink.UnmarshalAttributes(b)
	if err != nil {
		return "undecodable verdict"
	}
	var code uint32
	var chain string
	for _, a := range attrs {
		switch a.Type & ^uint16(unix.NLA_F_NESTED) {
		case unix.NFTA_VERDICT_CODE:
			if len(a.Data) == 4 {
				code = binary.BigEndian.Uint32(a.Data)
			}
		case unix.NFTA_VERDICT_CHAIN:
			chain = strings.TrimRight(string(a.Data), "\x00")
		}
	}
	if int32(code) != int32(expr.VerdictJump) || chain == "" {
		return fmt.Sprintf("verdict %d %s", int32(code), chain)
	}
	return chain
}
