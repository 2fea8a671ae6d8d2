package nft

import (
	"math"
	"net/netip"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"golang.org/x/sys/unix"
)

// The real backend's transactions, captured by google/nftables' test dialer
// instead of the kernel: one batch per transaction, element lists that fit
// their netlink attribute.

func msgType(m uint16) netlink.HeaderType {
	return netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | m)
}

// captureBatches returns a kernel backend whose netlink requests are
// recorded instead of sent.
func captureBatches() (*kernel, *[][]netlink.Message) {
	var batches [][]netlink.Message
	return &kernel{testDial: func(req []netlink.Message) ([]netlink.Message, error) {
		if req != nil {
			batches = append(batches, req)
		}
		return nil, nil // no reply: google/nftables takes that as acknowledged
	}}, &batches
}

// bigState has 10000 IPv4 ClusterIPs and an IPv6 LoadBalancer with 2000
// source ranges (the widest elements: 40-byte keys and ends).
func bigState() model.State {
	var s model.State
	for i := range 10000 {
		a := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
		s.Services = append(s.Services, vs(model.VSKey{Addr: a, Port: 80, Proto: model.TCP}, model.ClusterIP))
	}
	var ranges []string
	for i := range 2000 {
		ranges = append(ranges, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0xa, byte(2 * i >> 8), byte(2 * i)}), 64).String()) // not adjacent: not merged
	}
	s.Services = append(s.Services, vs(key("2001:db8:19::30", 443, model.TCP), model.LoadBalancer, restricted(ranges...)))
	return s
}

// elemCounts returns, per set, the kernel elements the NEWSETELEM
// messages of batch carry, checking that each list fits its attribute.
func elemCounts(t *testing.T, msgs []netlink.Message) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, m := range msgs {
		if m.Header.Type != msgType(unix.NFT_MSG_NEWSETELEM) && m.Header.Type != msgType(unix.NFT_MSG_DELSETELEM) {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(m.Data[4:])
		if err != nil {
			t.Fatal(err)
		}
		var set string
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_ELEM_LIST_SET:
				set = ad.String()
			case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
				if n := len(ad.Bytes()); n > math.MaxUint16-4 {
					t.Fatalf("set %s: element list of %d bytes does not fit a netlink attribute", set, n)
				}
				inner, err := netlink.UnmarshalAttributes(ad.Bytes())
				if err != nil {
					t.Fatalf("set %s: %v", set, err)
				}
				counts[set] += len(inner)
			}
		}
		if err := ad.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return counts
}

func TestCreateIsOneBatch(t *testing.T) {
	k, batches := captureBatches()
	rs := newRuleset()
	want := encode(Build(bigState(), basePods))
	tx := plan(rs, nil, want, "table missing")
	if err := k.commit(rs, tx); err != nil {
		t.Fatal(err)
	}
	if len(*batches) != 1 {
		t.Fatalf("%d sends, want one batch", len(*batches))
	}
	b := (*batches)[0]
	if b[0].Header.Type != netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN) || b[len(b)-1].Header.Type != netlink.HeaderType(unix.NFNL_MSG_BATCH_END) {
		t.Fatalf("batch does not start with BEGIN and end with END")
	}
	msgs := b[1 : len(b)-1]
	if len(msgs) != tx.messages(rs) {
		t.Fatalf("%d messages, the transaction counts %d", len(msgs), tx.messages(rs))
	}
	// Add, delete, add the table: the batch works whether it exists or not.
	for i, typ := range []uint16{unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE, unix.NFT_MSG_NEWTABLE} {
		if msgs[i].Header.Type != msgType(typ) {
			t.Fatalf("message %d has type %#x, want %#x", i, msgs[i].Header.Type, msgType(typ))
		}
	}
	byType := map[netlink.HeaderType]int{}
	for _, m := range msgs {
		byType[m.Header.Type]++
	}
	if byType[msgType(unix.NFT_MSG_NEWSET)] != 10 || byType[msgType(unix.NFT_MSG_NEWCHAIN)] != 3 || byType[msgType(unix.NFT_MSG_NEWRULE)] != 17 {
		t.Fatalf("messages by type: %v", byType)
	}
	counts := elemCounts(t, msgs)
	for _, s := range rs.sets {
		if want := s.kernelCount(want.sorted(s.name)); counts[s.name] != want {
			t.Errorf("set %s: %d kernel elements sent, want %d", s.name, counts[s.name], want)
		}
	}
	t.Logf("10000 VIPs + 2000 IPv6 ranges: %d messages (%d element lists)", len(msgs), byType[msgType(unix.NFT_MSG_NEWSETELEM)])
}

func TestDeltaIsOneMessage(t *testing.T) {
	k, batches := captureBatches()
	rs := newRuleset()
	have := encode(Build(bigState(), basePods))
	s := bigState()
	s.Services = append(s.Services, vs(key("198.19.200.1", 443, model.TCP), model.ClusterIP))
	tx := plan(rs, have, encode(Build(s, basePods)), "")
	if err := k.commit(rs, tx); err != nil {
		t.Fatal(err)
	}
	if len(*batches) != 1 {
		t.Fatalf("%d sends, want one batch", len(*batches))
	}
	msgs := (*batches)[0]
	msgs = msgs[1 : len(msgs)-1]
	if len(msgs) != 1 || msgs[0].Header.Type != msgType(unix.NFT_MSG_NEWSETELEM) {
		t.Fatalf("delta of one VIP sent %d messages (%v), want one NEWSETELEM", len(msgs), msgs)
	}
	if c := elemCounts(t, msgs); c[setVIPs4] != 1 || len(c) != 1 {
		t.Fatalf("elements sent %v, want one in vips4", c)
	}
}
