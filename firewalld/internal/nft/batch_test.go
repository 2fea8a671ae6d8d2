package nft

import (
	"math"
	"testing"

	"github.com/mdlayher/netlink"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"golang.org/x/sys/unix"
)

// The real backend's transactions, captured by google/nftables' test dialer
// instead of the kernel: one batch per transaction, in the order
// references need, element lists that fit their netlink attribute.

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

// commitCaptured commits t through the real backend and returns its one
// batch's messages, without the batch's begin and end.
func commitCaptured(t *testing.T, rs *ruleset, tx *tx) []netlink.Message {
	t.Helper()
	k, batches := captureBatches()
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
	return msgs
}

// msgSet returns the set an element message is for, and its element count,
// checking that the list fits its attribute.
func msgSet(t *testing.T, m netlink.Message) (string, int) {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	var set string
	n := 0
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_LIST_SET:
			set = ad.String()
		case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
			if l := len(ad.Bytes()); l > math.MaxUint16-4 {
				t.Fatalf("set %s: element list of %d bytes does not fit a netlink attribute", set, l)
			}
			inner, err := netlink.UnmarshalAttributes(ad.Bytes())
			if err != nil {
				t.Fatalf("set %s: %v", set, err)
			}
			n = len(inner)
		}
	}
	if err := ad.Err(); err != nil {
		t.Fatal(err)
	}
	return set, n
}

// nameAttr returns the name of a chain message.
func chainName(t *testing.T, m netlink.Message) string {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	for ad.Next() {
		if ad.Type() == unix.NFTA_CHAIN_NAME {
			return ad.String()
		}
	}
	return ""
}

func TestCreateIsOneBatch(t *testing.T) {
	rs := newRuleset(logConfig{group: 1, rate: 10, burst: 5})
	want := encode(bigDatapath(10000, 1000, 20000))
	tx := plan(rs, nil, want, "table missing")
	msgs := commitCaptured(t, rs, tx)
	// Add, delete, add the table: the batch works whether it exists or not.
	for i, typ := range []uint16{unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE, unix.NFT_MSG_NEWTABLE} {
		if msgs[i].Header.Type != msgType(typ) {
			t.Fatalf("message %d has type %#x, want %#x", i, msgs[i].Header.Type, msgType(typ))
		}
	}
	byType := map[netlink.HeaderType]int{}
	counts := map[string]int{}
	chainsSeen := map[string]bool{}
	for _, m := range msgs {
		byType[m.Header.Type]++
		switch m.Header.Type {
		case msgType(unix.NFT_MSG_NEWCHAIN):
			chainsSeen[chainName(t, m)] = true
		case msgType(unix.NFT_MSG_NEWSETELEM):
			set, n := msgSet(t, m)
			counts[set] += n
			// A verdict element comes after the chain it jumps to.
			if s, _ := rs.set(set); s.data == verdictData && len(chainsSeen) < len(rs.chains)+len(want.chains) {
				t.Fatalf("elements of %s before all chains exist", set)
			}
		}
	}
	deny := len(want.chains)
	if deny != 1250 {
		t.Fatalf("%d deny chains, want 1250", deny)
	}
	if byType[msgType(unix.NFT_MSG_NEWSET)] != 20 || byType[msgType(unix.NFT_MSG_NEWCHAIN)] != 5+deny ||
		byType[msgType(unix.NFT_MSG_NEWRULE)] != rs.fixedRules()+2*deny {
		t.Fatalf("messages by type: %v", byType)
	}
	for _, s := range rs.sets {
		if want := s.kernelCount(want.elems.sorted(s.name)); counts[s.name] != want {
			t.Errorf("set %s: %d kernel elements sent, want %d", s.name, counts[s.name], want)
		}
	}
	t.Logf("10k identities, 1k groups, 20k allow elements: %d messages (%d element lists)", len(msgs), byType[msgType(unix.NFT_MSG_NEWSETELEM)])
}

func TestDeltaOrder(t *testing.T) {
	rs := newRuleset(logConfig{})
	old := baseDatapath()
	new := baseDatapath()
	// db's egress group goes, a new one comes for web; db moves to web's
	// ingress group (deny-in-0000a002 goes).
	delete(new.EgressGroup, addr("198.18.128.3"))
	new.EgressGroup[addr("198.18.128.2")] = 0x0000a003
	new.IngressGroup[addr("198.18.128.3")] = groupWeb
	msgs := commitCaptured(t, rs, planDelta(delta(old, new)))
	var order []string
	for _, m := range msgs {
		switch m.Header.Type {
		case msgType(unix.NFT_MSG_DELSETELEM):
			set, _ := msgSet(t, m)
			order = append(order, "del "+set)
		case msgType(unix.NFT_MSG_NEWSETELEM):
			set, _ := msgSet(t, m)
			order = append(order, "add "+set)
		case msgType(unix.NFT_MSG_DELCHAIN):
			order = append(order, "del chain "+chainName(t, m))
		case msgType(unix.NFT_MSG_NEWCHAIN):
			order = append(order, "add chain "+chainName(t, m))
		case msgType(unix.NFT_MSG_NEWRULE):
			order = append(order, "rule")
		default:
			t.Fatalf("unexpected message %v", m.Header.Type)
		}
	}
	want := []string{
		"del ing_group4", "del eg_group4", "del ing_deny4", "del eg_deny4",
		"del chain deny-eg-0000a002", "del chain deny-in-0000a002",
		"add chain deny-eg-0000a003", "rule",
		"add ing_group4", "add eg_group4", "add ing_deny4", "add eg_deny4",
	}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

func TestOneElementIsOneMessage(t *testing.T) {
	rs := newRuleset(logConfig{})
	old := bigDatapath(10000, 1000, 100000)
	new := bigDatapath(10000, 1000, 100000)
	new.IngressAllow[model.Allow{Group: 0x00200001, Ident: 0x00100001, Ports: tcp(5)}] = struct{}{}
	msgs := commitCaptured(t, rs, planDelta(delta(old, new)))
	if len(msgs) != 1 || msgs[0].Header.Type != msgType(unix.NFT_MSG_NEWSETELEM) {
		t.Fatalf("delta of one allow element sent %d messages, want one NEWSETELEM", len(msgs))
	}
	if set, n := msgSet(t, msgs[0]); set != setIngressAllow || n != 1 {
		t.Fatalf("sent %d elements to %s, want one to ing_allow", n, set)
	}
}

func TestChunksFitTheAttribute(t *testing.T) {
	rs := newRuleset(logConfig{})
	for _, s := range rs.sets {
		// One element more than a message holds, each as large as the
		// set's elements get (ranges that need an end element).
		per := s.perMessage()
		es := make([]elem, per+1)
		for i := range es {
			key := make([]byte, s.keyLen())
			key[0], key[1], key[2] = 0x10, byte(i>>8), byte(i)
			end := append([]byte(nil), key...)
			end[3] = 0x10
			e := elem{key: string(key)}
			if s.kind != hashSet {
				e.end = string(end)
			}
			switch s.data {
			case markData:
				e.val = string(mark(model.ID(i)))
			case verdictData:
				e.val = denyChainName(model.Ingress, model.ID(i))
			}
			es[i] = e
		}
		msgs := commitCaptured(t, rs, &tx{add: map[string][]elem{s.name: es}})
		if len(msgs) != 2 {
			t.Fatalf("set %s: %d elements in %d messages, want 2", s.name, len(es), len(msgs))
		}
		n := 0
		for _, m := range msgs {
			_, k := msgSet(t, m) // fails when a list exceeds its attribute
			n += k
		}
		if n != s.kernelCount(es) {
			t.Errorf("set %s: %d kernel elements sent, want %d", s.name, n, s.kernelCount(es))
		}
		if per < 400 {
			t.Errorf("set %s: only %d elements per message", s.name, per)
		}
	}
}
