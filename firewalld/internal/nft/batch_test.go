package nft

import (
	"fmt"
	"math"
	"reflect"
	"slices"
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

// attrs decodes a message's attributes: type → data (strings for names).
func attrs(t *testing.T, m netlink.Message) map[uint16][]byte {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint16][]byte{}
	for ad.Next() {
		out[ad.Type()] = ad.Bytes()
	}
	if err := ad.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func name(b []byte) string { return string(b[:max(0, len(b)-1)]) }

// msgSet returns the set an element message is for, and its element count,
// checking that the list fits its attribute.
func msgSet(t *testing.T, m netlink.Message) (string, int) {
	t.Helper()
	a := attrs(t, m)
	set := name(a[unix.NFTA_SET_ELEM_LIST_SET])
	list := a[unix.NFTA_SET_ELEM_LIST_ELEMENTS]
	if len(list) > math.MaxUint16-4 {
		t.Fatalf("set %s: element list of %d bytes does not fit a netlink attribute", set, len(list))
	}
	inner, err := netlink.UnmarshalAttributes(list)
	if err != nil {
		t.Fatalf("set %s: %v", set, err)
	}
	return set, len(inner)
}

// describe names a message as "<kind> <object>": "add set peer-…",
// "flush out-…", "rule in-…", "add elements ing_group4".
func describe(t *testing.T, m netlink.Message) string {
	t.Helper()
	a := attrs(t, m)
	switch m.Header.Type {
	case msgType(unix.NFT_MSG_NEWTABLE):
		return "add table"
	case msgType(unix.NFT_MSG_DELTABLE):
		return "delete table"
	case msgType(unix.NFT_MSG_NEWSET):
		return "add set " + name(a[unix.NFTA_SET_NAME])
	case msgType(unix.NFT_MSG_DELSET):
		return "delete set " + name(a[unix.NFTA_SET_NAME])
	case msgType(unix.NFT_MSG_NEWCHAIN):
		return "add chain " + name(a[unix.NFTA_CHAIN_NAME])
	case msgType(unix.NFT_MSG_DELCHAIN):
		return "delete chain " + name(a[unix.NFTA_CHAIN_NAME])
	case msgType(unix.NFT_MSG_NEWRULE):
		return "rule " + name(a[unix.NFTA_RULE_CHAIN])
	case msgType(unix.NFT_MSG_DELRULE):
		if _, one := a[unix.NFTA_RULE_HANDLE]; one {
			t.Fatalf("a rule deleted by handle")
		}
		return "flush " + name(a[unix.NFTA_RULE_CHAIN])
	case msgType(unix.NFT_MSG_NEWSETELEM):
		set, _ := msgSet(t, m)
		return "add elements " + set
	case msgType(unix.NFT_MSG_DELSETELEM):
		set, _ := msgSet(t, m)
		return "delete elements " + set
	}
	t.Fatalf("unexpected message %v", m.Header.Type)
	return ""
}

// describeAll describes msgs, runs of rules of a chain as one "rules
// <chain> ×n".
func describeAll(t *testing.T, msgs []netlink.Message) []string {
	var out []string
	n := 0
	for i, m := range msgs {
		d := describe(t, m)
		n++
		if i+1 < len(msgs) && d[:5] == "rule " && describe(t, msgs[i+1]) == d {
			continue
		}
		if n > 1 {
			d = fmt.Sprintf("%s ×%d", d, n)
		}
		out = append(out, d)
		n = 0
	}
	return out
}

func TestCreateIsOneBatch(t *testing.T) {
	rs := newRuleset(logConfig{group: 1, rate: 10, burst: 5})
	want := newState(bigDatapath(10000, 1000, 500))
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
	sets, chains := map[string]bool{}, map[string]bool{}
	for _, m := range msgs {
		byType[m.Header.Type]++
		a := attrs(t, m)
		switch m.Header.Type {
		case msgType(unix.NFT_MSG_NEWSET):
			sets[name(a[unix.NFTA_SET_NAME])] = true
		case msgType(unix.NFT_MSG_NEWCHAIN):
			chains[name(a[unix.NFTA_CHAIN_NAME])] = true
		case msgType(unix.NFT_MSG_NEWRULE):
			// A rule comes after its chain and the sets it names: a fixed
			// chain's the fixed sets, a group chain's peer sets.
			chain := name(a[unix.NFTA_RULE_CHAIN])
			need := len(rs.sets) + len(tx.addSets)
			if _, fixed := rs.chain(chain); fixed {
				need = len(rs.sets)
			}
			if !chains[chain] || len(sets) < need {
				t.Fatalf("a rule of %s before its chain or the sets", chain)
			}
		case msgType(unix.NFT_MSG_NEWSETELEM):
			set, n := msgSet(t, m)
			counts[set] += n
			// A verdict element comes after the chains it jumps to.
			if s, _ := rs.setSpec(set); s.verdicts && len(chains) < len(rs.chains)+len(tx.addChains) {
				t.Fatalf("elements of %s before all chains exist", set)
			}
		}
	}
	_, peerSets, groupChains := want.content()
	// 1000 ingress groups, 250 egress groups; 500 namespace peers, "all
	// pods" and an ipBlock.
	if len(groupChains) != 1250 || len(peerSets) != 2*502 {
		t.Fatalf("%d group chains, %d peer sets", len(groupChains), len(peerSets))
	}
	rules := 0
	for _, c := range tx.rules {
		rules += rs.groupRuleCount(c.rules)
	}
	if byType[msgType(unix.NFT_MSG_NEWSET)] != len(rs.sets)+len(peerSets) || byType[msgType(unix.NFT_MSG_NEWCHAIN)] != len(rs.chains)+len(groupChains) ||
		byType[msgType(unix.NFT_MSG_NEWRULE)] != rs.fixedRules()+rules {
		t.Fatalf("messages by type: %v", byType)
	}
	es, _, _ := want.content()
	for set, m := range es {
		s, _ := rs.setSpec(set)
		if want := s.kernelCount(sortedElems(m)); counts[set] != want {
			t.Errorf("set %s: %d kernel elements sent, want %d", set, counts[set], want)
		}
	}
	t.Logf("10k pods, 1250 group chains (%d rules), %d peer sets, %d elements: %d messages (%d element lists)",
		rules, len(peerSets), es.count(), len(msgs), byType[msgType(unix.NFT_MSG_NEWSETELEM)])
}

// orderDatapaths are a change that takes every kind of step.
func orderDatapaths() (old, new *model.Datapath) {
	old, new = baseDatapath(), baseDatapath()
	// db's egress group goes (and its chain), a new one comes for web
	// naming a new peer; db moves to web's ingress group (in-0000a002
	// goes, and with it peer-0000b001); web's ingress rules change.
	delete(new.EgressGroup, addr("198.18.128.3"))
	delete(new.Chains, outDB)
	new.EgressGroup[addr("198.18.128.2")] = 0x0000a003
	new.Chains[model.GroupKey{Direction: model.Egress, ID: 0x0000a003}] = []model.Rule{{Peer: 0x0000b003, Ports: tcp(80)}}
	new.PeerElems[pod(0x0000b003, "198.18.140.3")] = struct{}{}
	new.IngressGroup[addr("198.18.128.3")] = groupWeb
	delete(new.Chains, inDB)
	new.Chains[inWeb] = new.Chains[inWeb][1:]
	delete(new.PeerElems, pod(peerApp, "198.18.140.7"))
	return old, new
}

func TestDeltaOrder(t *testing.T) {
	rs := newRuleset(logConfig{})
	old, new := orderDatapaths()
	want := []string{
		"add set peer-0000b003-4", "add set peer-0000b003-6",
		"add chain out-0000a003",
		"flush in-0000a001", "rule in-0000a001 ×5",
		"rule out-0000a003 ×3",
		"delete elements ing_group4", "delete elements eg_group4", "delete elements peer-0000b002-4",
		"add elements ing_group4", "add elements eg_group4", "add elements peer-0000b003-4",
		"delete chain in-0000a002", "delete chain out-0000a002",
		"delete set peer-0000b001-4", "delete set peer-0000b001-6",
	}
	// The same transaction from a partial Apply, from ApplyDelta, and
	// from a full read.
	s := newState(old)
	partial := s.applyDelta(s.deltaTo(newState(new)))
	s = newState(old)
	viaDelta := s.applyDelta(modelDelta(old, new))
	full := plan(rs, asRead(rs, newState(old)), newState(new), "")
	for what, tx := range map[string]*tx{"partial Apply": partial, "ApplyDelta": viaDelta, "full Apply": full} {
		if got := describeAll(t, commitCaptured(t, rs, tx)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %q\nwant %q", what, got, want)
		}
	}
	// And the fake kernel (which refuses what the kernel refuses) takes it.
	f := freshFake(t, Config{}, old)
	mustApplyDelta(t, f, new, modelDelta(old, new))
	sameTable(t, "after the delta", f, freshFake(t, Config{}, new))
}

// A pod that comes costs one message per set it changes, nothing else,
// however big the table.
func TestOnePodChangeIsFewMessages(t *testing.T) {
	rs := newRuleset(logConfig{})
	old := bigDatapath(10000, 1000, 500)
	d := old.Clone()
	delta := model.NewDelta()
	a := bigAddr(10001)
	delta.KnownLocal.Put(d.KnownLocal, a)
	delta.IngressGroup.Put(d.IngressGroup, a, bigGroup(1), model.EqID)
	delta.PeerElems.Put(d.PeerElems, model.PeerElem{Peer: bigPeer(1), From: a, To: a})
	delta.PeerElems.Put(d.PeerElems, model.PeerElem{Peer: bigPeer(500), From: a, To: a})
	s := newState(old)
	msgs := commitCaptured(t, rs, s.applyDelta(delta))
	want := []string{"add elements known_local4", "add elements ing_group4", "add elements peer-00100001-4", "add elements peer-001001f4-4"}
	if got := describeAll(t, msgs); !reflect.DeepEqual(got, want) {
		t.Fatalf("a new pod: %q, want %q", got, want)
	}
	for _, m := range msgs {
		if _, n := msgSet(t, m); n > 2 {
			t.Fatalf("%d kernel elements in one message, want one address (or its range: two)", n)
		}
	}
}

func TestChainRulesChangeIsFlushAndAdd(t *testing.T) {
	rs := newRuleset(logConfig{group: 2, rate: 1, burst: 5})
	old := baseDatapath()
	new := baseDatapath()
	new.Chains[inDB] = []model.Rule{{Peer: peerWeb, Ports: tcp(5433)}, {Peer: model.AnyPeer, Ports: model.AllTraffic}}
	s := newState(old)
	msgs := commitCaptured(t, rs, s.applyDelta(modelDelta(old, new)))
	if got, want := describeAll(t, msgs), []string{"flush in-0000a002", "rule in-0000a002 ×5"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("rules changed: %q, want %q", got, want)
	}
}

func TestChunksFitTheAttribute(t *testing.T) {
	rs := newRuleset(logConfig{})
	specs := slices.Clone(rs.sets)
	for _, v6 := range []bool{false, true} {
		s, _ := rs.setSpec(peerSetName(7, v6))
		specs = append(specs, s)
	}
	for _, s := range specs {
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
			if s.interval {
				e.end = string(end)
			}
			if s.verdicts {
				e.val = groupChainName(model.GroupKey{Direction: model.Egress, ID: model.ID(i)})
			}
			es[i] = e
		}
		msgs := commitCaptured(t, rs, &tx{add: map[string][]elem{s.name: es}, del: map[string][]elem{}})
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
