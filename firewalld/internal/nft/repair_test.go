package nft

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

func TestFailedTransactionMakesTheNextApplyFull(t *testing.T) {
	for _, how := range []string{"Apply", "ApplyDelta"} {
		f := freshFake(t, Config{}, baseDatapath())
		d := baseDatapath()
		d.KnownLocal[addr("198.18.128.4")] = struct{}{}
		apply := func() (Result, error) {
			if how == "Apply" {
				return f.Apply(d)
			}
			return f.ApplyDelta(d, modelDelta(baseDatapath(), d))
		}
		f.FailNext(errors.New("ENOBUFS"))
		if _, err := apply(); err == nil || !strings.Contains(err.Error(), "ENOBUFS") {
			t.Fatalf("%s with a failing transaction: %v", how, err)
		}
		if got := f.Dump().Sets["known_local4"]; len(got) != 2 {
			t.Fatalf("%s: a failed transaction changed the kernel: %v", how, got)
		}
		// The next call reads the kernel and writes the one element again.
		if res, err := apply(); err != nil || res != (Result{Writes: 1, Full: true, ElementsAdded: 1}) {
			t.Fatalf("%s after the error %+v, %v", how, res, err)
		}
	}
}

func TestFullApplyRepairsDrift(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)

	// Behind firewalld's back: an element added, another deleted, a
	// chain's rules changed, a peer set added and another deleted.
	stranger := addr("198.18.128.99").AsSlice()
	f.k.sets["known_local4"].put(elemID{key: string(stranger)}, elem{key: string(stranger)})
	f.k.sets["peer-0000b002-4"].remove(elemID{key: string(addr("198.18.140.7").AsSlice()), end: string(addr("198.18.140.7").AsSlice())})
	f.k.chains[inDB].fp = "edited"
	f.k.sets["peer-0000f00d-4"] = &memSet{spec: peerSetSpec("peer-0000f00d-4", false), elems: map[elemID]elem{}, ranges: map[elemID]elem{}}
	delete(f.k.sets, "peer-0000c001-6")

	// A partial Apply trusts what it wrote: nothing to do. A full one
	// adds the set, rewrites the chain (a flush, three rules), deletes
	// and adds an element, deletes the stranger set.
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("partial Apply %+v", res)
	}
	f.Invalidate()
	want := Result{Writes: 1 + 1 + 3 + 1 + 1 + 1, Full: true, ElementsAdded: 1, ElementsDeleted: 1, ChainsChanged: 1, PeerSetsAdded: 1, PeerSetsDeleted: 1}
	if res := mustApply(t, f, d); res != want {
		t.Fatalf("full Apply %+v, want %+v", res, want)
	}
	sameTable(t, "after repair", f, freshFake(t, Config{}, d))
}

func TestTamperedStaticPartIsRecreated(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)
	f.Tamper("chain pods: 9 rules, want 8")
	f.Invalidate()
	res := mustApply(t, f, d)
	if !res.Recreate || res.Reason != "chain pods: 9 rules, want 8" || res.Writes != recreateWrites(Config{}, d) || res.ChainsAdded != 3 {
		t.Fatalf("Apply after tampering %+v, want the table recreated", res)
	}
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("then %+v", res)
	}
}

func TestLogSettingsRewriteTheGroupChains(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)
	logging := Config{LogGroup: 7, LogRate: 5, LogBurst: 20}
	// Every group chain flushed and written again with its log rule (one
	// more rule each), in one transaction.
	res := mustApply(t, f.Restarted(logging), d)
	if want := (Result{Writes: 3 + (6 + 1) + (3 + 1) + (3 + 1), Full: true, ChainsChanged: 3}); res != want {
		t.Fatalf("restart with logging %+v, want %+v", res, want)
	}
	if got, want := f.Dump().Chains["in-0000a002"][2], `limit rate 5/second burst 20 packets log prefix "nodenet deny in 0000a002 " group 7`; got != want {
		t.Fatalf("log rule %q, want %q", got, want)
	}
	// A burst of 0 is the kernel's default, 5: written as 5, the same
	// rules as an explicit 5.
	defaulted := Config{LogGroup: 7, LogRate: 5}
	g := freshFake(t, defaulted, d)
	if res := mustApply(t, g.Restarted(Config{LogGroup: 7, LogRate: 5, LogBurst: 5}), d); res != (Result{Full: true}) {
		t.Fatalf("burst 0 and 5 differ: %+v", res)
	}
	if got, want := g.Dump().Chains["out-0000a002"][2], `limit rate 5/second log prefix "nodenet deny eg 0000a002 " group 7`; got != want {
		t.Fatalf("log rule %q, want %q", got, want)
	}
	// Without group chains the log settings are nowhere in the table.
	e := freshFake(t, Config{}, model.NewDatapath())
	if res := mustApply(t, e.Restarted(logging), model.NewDatapath()); res != (Result{Full: true}) {
		t.Fatalf("log settings changed without group chains: %+v", res)
	}
}

func TestBadConfig(t *testing.T) {
	f := NewFake(Config{LogGroup: 2})
	if _, err := f.Apply(baseDatapath()); err == nil || !strings.Contains(err.Error(), "log rate") {
		t.Fatalf("Apply with a log group and no rate: %v", err)
	}
	if _, err := f.ApplyDelta(baseDatapath(), model.NewDelta()); err == nil || !strings.Contains(err.Error(), "log rate") {
		t.Fatalf("ApplyDelta with a log group and no rate: %v", err)
	}
	if f.Dump().Exists {
		t.Fatal("a bad config wrote the table")
	}
}

func TestDelete(t *testing.T) {
	f := NewFake(Config{})
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if d := f.Dump(); d.Exists || d.Transactions != 0 {
		t.Fatalf("deleting no table wrote: %+v", d)
	}
	d := baseDatapath()
	mustApply(t, f, d)
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if dump := f.Dump(); dump.Exists {
		t.Fatalf("table still there: %+v", dump)
	}
	// The next Apply (or ApplyDelta) knows the table is gone.
	if res := mustApplyDelta(t, f, d, model.NewDelta()); !res.Recreate || !res.Full {
		t.Fatalf("ApplyDelta after Delete %+v, want the table created", res)
	}
}

func TestNilAndEmptyDatapath(t *testing.T) {
	f := NewFake(Config{})
	res := mustApply(t, f, nil)
	if !res.Recreate || res.ElementsAdded != 0 || res.ChainsAdded != 0 {
		t.Fatalf("Apply(nil) %+v, want an empty table", res)
	}
	if res := mustApply(t, f, &model.Datapath{}); res != (Result{}) {
		t.Fatalf("Apply of a zero Datapath after nil %+v, want nothing", res)
	}
	if res := mustApplyDelta(t, f, &model.Datapath{}, nil); res != (Result{}) {
		t.Fatalf("ApplyDelta without a delta %+v, want an Apply that finds nothing", res)
	}
}

func TestBadInputIsLeftOut(t *testing.T) {
	d := baseDatapath()
	// An IPv4-mapped address would collide with its IPv4 one; a zoned or
	// invalid address is no pod's.
	d.KnownLocal[addr("::ffff:198.18.128.2")] = struct{}{}
	d.KnownLocal[netip.Addr{}] = struct{}{}
	d.IngressGroup[addr("::ffff:198.18.128.2")] = 0x0000dead // no chain for it either
	d.EgressGroup[addr("fe80::1%eth0")] = 0x0000dead
	d.LocalCIDRs = append(d.LocalCIDRs, netip.Prefix{}, netip.MustParsePrefix("198.18.128.128/25")) // invalid; inside the /24
	for _, e := range []model.PeerElem{
		block(peerNet, "198.18.0.30", "198.18.0.20"),          // empty
		block(peerNet, "198.18.0.30", "2001:db8::1"),          // two families
		pod(peerWeb, "::ffff:198.18.128.9"),                   // mapped
		{Peer: peerWeb, From: netip.Addr{}, To: netip.Addr{}}, // invalid
		block(peerNet, "198.18.0.10", "198.18.0.20"),          // inside 198.18.0.0/24
		block(peerNet, "198.18.0.200", "198.18.1.5"),          // overlaps its end
	} {
		d.PeerElems[e] = struct{}{}
	}
	// Rules whose ports match nothing.
	d.Chains[inDB] = append(d.Chains[inDB],
		model.Rule{Peer: peerApp, Ports: model.PortRange{ProtoFrom: 17, ProtoTo: 6, PortFrom: 1, PortTo: 2}},
		model.Rule{Peer: 0x0000beef, Ports: model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: 90, PortTo: 80}})

	f := freshFake(t, Config{}, d)
	sameTable(t, "bad input", f, freshFake(t, Config{}, baseDatapath()))
	// The delta paths leave out the same, but for overlaps (which a full
	// Apply leaves out).
	g := freshFake(t, Config{}, baseDatapath())
	mustApply(t, g, d)
	sameTable(t, "bad input through a partial Apply", g, freshFake(t, Config{}, baseDatapath()))
	delete(d.PeerElems, block(peerNet, "198.18.0.10", "198.18.0.20"))
	delete(d.PeerElems, block(peerNet, "198.18.0.200", "198.18.1.5"))
	h := freshFake(t, Config{}, baseDatapath())
	mustApplyDelta(t, h, d, modelDelta(baseDatapath(), d))
	sameTable(t, "bad input through ApplyDelta", h, freshFake(t, Config{}, baseDatapath()))
}
