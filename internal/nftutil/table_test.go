package nftutil

import (
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

func nftType(m uint16) netlink.HeaderType {
	return netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | m)
}

// fakeTables answers google/nftables' requests as a kernel holding the
// given inet tables would (table dumps only), and records every batch.
func fakeTables(t *testing.T, names ...string) (ConnConfig, *[][]netlink.Message) {
	var batches [][]netlink.Message
	dial := func(req []netlink.Message) ([]netlink.Message, error) {
		if len(req) == 0 {
			return nil, nil
		}
		if req[0].Header.Type != nftType(unix.NFT_MSG_GETTABLE) {
			batches = append(batches, req)
			return nil, nil // no reply: google/nftables takes that as acknowledged
		}
		var out []netlink.Message
		for _, n := range names {
			attrs, err := netlink.MarshalAttributes([]netlink.Attribute{
				{Type: unix.NFTA_TABLE_NAME, Data: []byte(n + "\x00")},
				{Type: unix.NFTA_TABLE_FLAGS, Data: []byte{0, 0, 0, 0}},
			})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, netlink.Message{
				Header: netlink.Header{Type: nftType(unix.NFT_MSG_NEWTABLE), Flags: netlink.Multi, Sequence: req[0].Header.Sequence},
				Data:   append([]byte{unix.NFPROTO_INET, 0, 0, 0}, attrs...),
			})
		}
		return append(out, netlink.Message{Header: netlink.Header{Type: netlink.Done, Flags: netlink.Multi, Sequence: req[0].Header.Sequence}}), nil
	}
	return ConnConfig{TestDial: dial}, &batches
}

func TestDeleteTable(t *testing.T) {
	cfg, batches := fakeTables(t, "other", "ours")
	c, err := Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := FindTable(c, "ours", nftables.TableFamilyINet)
	if err != nil || tbl == nil || tbl.Name != "ours" {
		t.Fatalf("FindTable: %v, %v", tbl, err)
	}
	sent, err := DeleteTable(c, "ours", nftables.TableFamilyINet)
	if err != nil || !sent {
		t.Fatalf("DeleteTable: %v, %v", sent, err)
	}
	if len(*batches) != 1 {
		t.Fatalf("%d batches, want one", len(*batches))
	}
	b := (*batches)[0]
	msgs := b[1 : len(b)-1] // without the batch's begin and end
	if len(msgs) != 2 || msgs[0].Header.Type != nftType(unix.NFT_MSG_NEWTABLE) || msgs[1].Header.Type != nftType(unix.NFT_MSG_DELTABLE) {
		t.Fatalf("batch %v, want add and delete of the table", msgs)
	}

	// Missing: nothing sent.
	cfg, batches = fakeTables(t, "other")
	c, err = Dial(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sent, err := DeleteTable(c, "ours", nftables.TableFamilyINet); err != nil || sent || len(*batches) != 0 {
		t.Fatalf("DeleteTable of a missing table: sent %v, %v, %d batches", sent, err, len(*batches))
	}
}
