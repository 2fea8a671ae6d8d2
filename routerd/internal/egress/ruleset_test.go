package egress

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"github.com/nodenet/nodenet/internal/nftutil"
	"golang.org/x/sys/unix"
)

func TestRules(t *testing.T) {
	want := []string{
		`ip saddr @pod_cidrs4 ip daddr != @cluster_cidrs4 masquerade fully-random comment "pods to outside the cluster (IPv4)"`,
		`ip6 saddr @pod_cidrs6 ip6 daddr != @cluster_cidrs6 masquerade fully-random comment "pods to outside the cluster (IPv6)"`,
	}
	rules := ruleSpecs()
	if len(rules) != len(want) {
		t.Fatalf("%d rules, want %d", len(rules), len(want))
	}
	for i, r := range rules {
		if r.nft != want[i] {
			t.Errorf("rule %d renders as\n%s\nwant\n%s", i, r.nft, want[i])
		}
		for _, e := range r.exprs {
			if _, err := expr.Marshal(byte(nftables.TableFamilyINet), e); err != nil {
				t.Errorf("rule %d: %T: %v", i, e, err)
			}
		}
		// The rule checks the family before it reads addresses, and its
		// lookups name the table's sets.
		if m, ok := r.exprs[0].(*expr.Meta); !ok || m.Key != expr.MetaKeyNFPROTO {
			t.Errorf("rule %d does not start with meta nfproto", i)
		}
		for _, e := range r.exprs {
			if l, ok := e.(*expr.Lookup); ok && findSpec(l.SetName) == nil {
				t.Errorf("rule %d looks up %s, not a set of the table", i, l.SetName)
			}
		}
	}
}

func findSpec(name string) *setSpec {
	for _, s := range setSpecs() {
		if s.name == name {
			return &s
		}
	}
	return nil
}

func nftType(m uint16) netlink.HeaderType {
	return netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | m)
}

// recordingKernel answers google/nftables as a kernel without tables (every
// dump is empty) and records the batches it receives, their messages
// without the batch's begin and end.
func recordingKernel() (nftutil.ConnConfig, *[][]netlink.Message) {
	var batches [][]netlink.Message
	dial := func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) == 0 {
			return nil, nil
		}
		if req[0].Header.Type == netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN) {
			batches = append(batches, req[1:len(req)-1])
			return nil, nil // no reply: taken as acknowledged
		}
		return []netlink.Message{{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi, Sequence: req[0].Header.Sequence}}}, nil
	}
	return nftutil.ConnConfig{TestDial: dial}, &batches
}

func TestTableTransaction(t *testing.T) {
	cc, batches := recordingKernel()
	tbl := newTable(cc)
	defer func() { _ = tbl.Close() }()

	// Many /32 destinations: cluster_cidrs4's elements need several
	// messages (one element list is one netlink attribute).
	d := Desired{PodCIDRs: pfx("198.18.128.0/24")}
	for i := range 3000 {
		d.NoMasquerade = append(d.NoMasquerade, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i / 128), byte(2 * (i % 128))}), 32))
	}
	res, err := tbl.Apply(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(*batches) != 1 {
		t.Fatalf("%d batches, want one transaction", len(*batches))
	}
	msgs := (*batches)[0]
	if len(msgs) != res.Writes {
		t.Errorf("%d messages sent, Result.Writes %d", len(msgs), res.Writes)
	}
	per := perMessage(setSpecs()[2])
	wantElemMsgs := 1 + (3001+per-1)/per // pod_cidrs4; cluster_cidrs4 holds the pod CIDR too
	var types []netlink.HeaderType
	for _, m := range msgs {
		types = append(types, m.Header.Type)
	}
	want := []netlink.HeaderType{nftType(unix.NFT_MSG_NEWTABLE), nftType(unix.NFT_MSG_DELTABLE), nftType(unix.NFT_MSG_NEWTABLE)}
	for range 4 {
		want = append(want, nftType(unix.NFT_MSG_NEWSET))
	}
	want = append(want, nftType(unix.NFT_MSG_NEWCHAIN), nftType(unix.NFT_MSG_NEWRULE), nftType(unix.NFT_MSG_NEWRULE))
	for range wantElemMsgs {
		want = append(want, nftType(unix.NFT_MSG_NEWSETELEM))
	}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("messages\n%v\nwant\n%v", types, want)
	}
	for _, m := range msgs {
		if len(m.Data) > 65535 {
			t.Errorf("a message of %d bytes: its element list overflows a netlink attribute", len(m.Data))
		}
	}

	// Nothing changed: nothing sent, the kernel not read.
	if res, err := tbl.Apply(d); err != nil || res.Writes != 0 || len(*batches) != 1 {
		t.Errorf("second Apply: %+v, %v, %d batches", res, err, len(*batches))
	}

	// Delete of a table the kernel does not list sends nothing.
	if err := tbl.Delete(); err != nil || len(*batches) != 1 {
		t.Errorf("Delete: %v, %d batches", err, len(*batches))
	}
}
