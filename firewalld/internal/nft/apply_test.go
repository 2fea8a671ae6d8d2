package nft

import (
	"reflect"
	"testing"

	"github.com/nodenet/nodenet/firewalld/internal/model"
)

// baseSets and baseChains are the fake kernel's table for baseDatapath.
func baseSets() map[string][]string {
	return map[string][]string{
		"local_cidrs4":    {"198.18.128.0/24"},
		"local_cidrs6":    {"2001:db8:80::/64"},
		"known_local4":    {"198.18.128.2", "198.18.128.3"},
		"known_local6":    {"2001:db8:80::2"},
		"ing_group4":      {"198.18.128.2 : jump in-0000a001", "198.18.128.3 : jump in-0000a002"},
		"ing_group6":      {"2001:db8:80::2 : jump in-0000a001"},
		"eg_group4":       {"198.18.128.3 : jump out-0000a002"},
		"eg_group6":       {},
		"peer-0000b001-4": {"198.18.128.2"},
		"peer-0000b001-6": {"2001:db8:80::2"},
		"peer-0000b002-4": {"198.18.128.3", "198.18.140.7"},
		"peer-0000b002-6": {},
		"peer-0000c001-4": {"198.18.0.0/24"},
		"peer-0000c001-6": {},
	}
}

func baseChains() map[string][]string {
	return map[string][]string{
		"in-0000a001": {
			"udp dport 53 return",
			"ip saddr @peer-0000b002-4 tcp dport 8080 return",
			"ip6 saddr @peer-0000b002-6 tcp dport 8080 return",
			"ip saddr @peer-0000c001-4 tcp dport 8000-8999 return",
			"ip6 saddr @peer-0000c001-6 tcp dport 8000-8999 return",
			"counter packets 0 bytes 0 drop",
		},
		"in-0000a002": {
			"ip saddr @peer-0000b001-4 tcp dport 5432 return",
			"ip6 saddr @peer-0000b001-6 tcp dport 5432 return",
			"counter packets 0 bytes 0 drop",
		},
		"out-0000a002": {
			"ip daddr @peer-0000b002-4 return",
			"ip6 daddr @peer-0000b002-6 return",
			"counter packets 0 bytes 0 drop",
		},
	}
}

// sameTable fails unless the two fakes' kernels hold the same table.
func sameTable(t *testing.T, what string, got, want *Fake) {
	t.Helper()
	g, w := got.Dump(), want.Dump()
	if g.Exists != w.Exists || !reflect.DeepEqual(g.Sets, w.Sets) || !reflect.DeepEqual(g.Chains, w.Chains) {
		t.Fatalf("%s: the table is\n%v\n%v\nwant\n%v\n%v", what, g.Sets, g.Chains, w.Sets, w.Chains)
	}
}

// freshFake is a fake with d applied to an empty kernel.
func freshFake(t *testing.T, cfg Config, d *model.Datapath) *Fake {
	t.Helper()
	f := NewFake(cfg)
	mustApply(t, f, d)
	return f
}

func TestFirstApplyCreatesThenNothing(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	res := mustApply(t, f, d)
	want := Result{
		Writes: recreateWrites(Config{}, d), Full: true, Recreate: true, Reason: "table missing",
		// local CIDRs 2, known 3, ingress groups 3, egress group 1, peer
		// elements 5.
		ElementsAdded: 2 + 3 + 3 + 1 + 5,
		ChainsAdded:   3, // in-0000a001, in-0000a002, out-0000a002
		PeerSetsAdded: 6,
	}
	if res != want {
		t.Fatalf("first Apply:\n got %+v\nwant %+v", res, want)
	}
	dump := f.Dump()
	if !dump.Exists || dump.Transactions != 1 || dump.Writes != res.Writes || dump.Last.Writes != res.Writes {
		t.Fatalf("dump %+v", dump)
	}
	if !reflect.DeepEqual(dump.Sets, baseSets()) {
		t.Fatalf("sets:\n got %v\nwant %v", dump.Sets, baseSets())
	}
	if !reflect.DeepEqual(dump.Chains, baseChains()) {
		t.Fatalf("chains:\n got %v\nwant %v", dump.Chains, baseChains())
	}

	// The same Datapath again: nothing at all, not even a read.
	if res := mustApply(t, f, baseDatapath()); res != (Result{}) {
		t.Fatalf("repeated Apply %+v, want nothing", res)
	}
	if res := mustApplyDelta(t, f, baseDatapath(), model.NewDelta()); res != (Result{}) {
		t.Fatalf("empty delta %+v, want nothing", res)
	}
	// A full one reads, finds everything, writes nothing.
	f.Invalidate()
	if res := mustApply(t, f, d); res != (Result{Full: true}) {
		t.Fatalf("full Apply of the same Datapath %+v, want a read and nothing else", res)
	}
	if n := f.Dump().Transactions; n != 1 {
		t.Fatalf("%d transactions, want 1", n)
	}
}

func TestRestartWritesNothing(t *testing.T) {
	cfg := Config{LogGroup: 3, LogRate: 10}
	f := NewFake(cfg)
	mustApply(t, f, baseDatapath())
	if res := mustApply(t, f.Restarted(cfg), baseDatapath()); res != (Result{Full: true}) {
		t.Fatalf("after restart %+v, want a read and no write", res)
	}
	// ApplyDelta of a restarted firewalld (it trusts nothing yet) is a
	// full Apply too.
	if res := mustApplyDelta(t, f.Restarted(cfg), baseDatapath(), model.NewDelta()); res != (Result{Full: true}) {
		t.Fatalf("ApplyDelta after restart %+v, want a read and no write", res)
	}
	if n := f.Dump().Transactions; n != 1 {
		t.Fatalf("%d transactions, want 1", n)
	}
}

func TestCallerMayChangeItsDatapath(t *testing.T) {
	f := NewFake(Config{})
	d := baseDatapath()
	mustApply(t, f, d)
	// The caller reuses its maps: the applier must have kept its own copy.
	d.KnownLocal[addr("198.18.128.4")] = struct{}{}
	res := mustApply(t, f, d)
	if res != (Result{Writes: 1, ElementsAdded: 1}) {
		t.Fatalf("Apply after the caller changed its map %+v, want one element added", res)
	}

	// The compiler changes its Datapath and Delta in place after
	// ApplyDelta: rules handed over are copied.
	delta := model.NewDelta()
	rules := []model.Rule{{Peer: peerWeb, Ports: tcp(1)}}
	delta.Chains.Put(d.Chains, inDB, rules, model.EqRules)
	mustApplyDelta(t, f, d, delta)
	rules[0].Ports = tcp(2)
	clear(delta.Chains.Set)
	d.Chains[inDB] = []model.Rule{{Peer: peerWeb, Ports: tcp(1)}}
	if res := mustApply(t, f, d); res != (Result{}) {
		t.Fatalf("the table changed with the caller's rules: %+v", res)
	}
	if got := f.Dump().Chains["in-0000a002"][0]; got != "ip saddr @peer-0000b001-4 tcp dport 1 return" {
		t.Fatalf("in-0000a002 starts with %q", got)
	}
}
