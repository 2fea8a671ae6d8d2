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
// verdicts out (a delete names keys only).
func (s setSpec) kernelElems(es []elem, withData bool) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(es)*2)
	for _, e := range es {
		if s.interval {
			out = append(out, nftutil.IntervalElements([]byte(e.key), []byte(e.end), nil)...)
			continue
		}
		k := nftables.SetElement{Key: []byte(e.key)}
		if withData && s.verdicts {
			k.VerdictData = &expr.Verdict{Kind: expr.VerdictJump, Chain: e.val}
		}
		out = append(out, k)
	}
	return out
}

// kernelCount is how many kernel elements es take.
func (s setSpec) kernelCount(es []elem) int {
	if !s.interval {
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
	if s.interval {
		for _, r := range nftutil.Intervals(kes) {
			out = append(out, elem{key: string(r.First), end: string(r.Last)})
		}
		return out
	}
	for _, k := range kes {
		e := elem{key: string(k.Key)}
		if s.verdicts {
			e.val = verdictChain(k.Val)
		}
		out = append(out, e)
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
