//go:build kernel

package nft

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
)

// median is the middle one of ds.
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func TestKernelLargeTable(t *testing.T) {
	ns := netnstest.New(t)
	cfg := Config{NetNS: int(ns), LogGroup: 1, LogRate: 10}
	tb := New(cfg)
	d := benchDatapath()
	es, sets, chains := newState(d).content()

	start := time.Now()
	res := mustApply(t, tb, d)
	cold := time.Since(start)
	if !res.Recreate || res.ElementsAdded != es.count() || res.ChainsAdded != len(chains) || res.PeerSetsAdded != len(sets) {
		t.Fatalf("cold Apply %+v", res)
	}
	coldWrites := res.Writes

	// A pod that comes and goes (four sets each time), twenty times.
	add, del := podChange(d)
	var podTimes []time.Duration
	for i := range 40 {
		delta := add
		if i%2 == 1 {
			delta = del
		}
		start = time.Now()
		res = mustApplyDelta(t, tb, d, delta)
		podTimes = append(podTimes, time.Since(start))
		if res.Writes != 4 || res.Full {
			t.Fatalf("pod change %+v", res)
		}
	}
	// A policy change: one chain's rules, and back.
	change, back := policyChange(d)
	var policyTimes []time.Duration
	for i := range 20 {
		delta := change
		if i%2 == 1 {
			delta = back
		}
		start = time.Now()
		res = mustApplyDelta(t, tb, d, delta)
		policyTimes = append(policyTimes, time.Since(start))
		if res.ChainsChanged != 1 || res.Writes != 1+9 {
			t.Fatalf("policy change %+v", res)
		}
	}
	// A new group (its chain and rules and a pod jumping to it).
	withGroup := d.Clone()
	g := bigAddr(10002)
	withGroup.KnownLocal[g] = struct{}{}
	withGroup.IngressGroup[g] = 0x00400001
	withGroup.Chains[model.GroupKey{Direction: model.Ingress, ID: 0x00400001}] = []model.Rule{{Peer: bigPeer(3), Ports: tcp(80)}}
	start = time.Now()
	res = mustApplyDelta(t, tb, withGroup, modelDelta(d, withGroup))
	newGroup := time.Since(start)
	if res != (Result{Writes: 1 + 4 + 2, ElementsAdded: 2, ChainsAdded: 1}) {
		t.Fatalf("new group %+v", res)
	}

	start = time.Now()
	res = mustApply(t, New(cfg), withGroup)
	restart := time.Since(start)
	if res != (Result{Full: true}) {
		t.Fatalf("restart %+v, want no write", res)
	}
	holds(t, ns, cfg, withGroup)
	t.Logf("%d elements, %d peer sets, %d group chains: cold Apply %v (%d messages); a pod (ApplyDelta, 4 elements) p50 %v; a policy (one chain's rules) p50 %v; a new group %v; restart with nothing changed (full read) %v",
		es.count(), len(sets), len(chains), cold.Round(time.Millisecond), coldWrites,
		median(podTimes).Round(time.Microsecond), median(policyTimes).Round(time.Microsecond),
		newGroup.Round(time.Microsecond), restart.Round(time.Millisecond))
}

// TestKernelNftLists: nft (Debian's, 1.0.6) lists the whole ruleset with
// a populated table, and its text of the group chains is the fake's.
func TestKernelNftLists(t *testing.T) {
	ns := netnstest.New(t)
	cfg := Config{NetNS: int(ns), LogGroup: 5, LogRate: 10}
	d := baseDatapath()
	d.Chains[inDB] = append(d.Chains[inDB],
		model.Rule{Peer: peerApp, Ports: model.PortRange{ProtoFrom: 6, ProtoTo: 6, PortFrom: 0, PortTo: 65535}},
		model.Rule{Peer: model.AnyPeer, Ports: model.PortRange{ProtoFrom: 17, ProtoTo: 17, PortFrom: 9000, PortTo: 9100}},
		model.Rule{Peer: model.AnyPeer, Ports: model.PortRange{ProtoFrom: 132, ProtoTo: 132, PortFrom: 7, PortTo: 7}})
	mustApply(t, New(cfg), d)
	fake := freshFake(t, cfg, d)
	for _, args := range [][]string{{"list", "ruleset"}, {"list", "tables"}, {"list", "table", "inet", TableName}} {
		out, err := nftCLI(t, ns, args...)
		if err != nil {
			t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[1] == "tables" {
			if !strings.Contains(out, "table inet "+TableName) {
				t.Errorf("nft list tables: %s", out)
			}
			continue
		}
		t.Logf("nft %s\n%s", strings.Join(args, " "), out)
		// Each group chain lists as the fake renders it.
		for name, want := range fake.Dump().Chains {
			if got := chainLines(out, name); !reflect.DeepEqual(got, want) {
				t.Errorf("nft %s, chain %s:\n got %q\nwant %q", strings.Join(args, " "), name, got, want)
			}
		}
	}
	for _, w := range []string{
		"ip saddr @local_cidrs4 ip saddr != @known_local4 counter packets 0 bytes 0 drop",
		"ip saddr vmap @eg_group4", "ip6 daddr vmap @ing_group6",
		"198.18.128.2 : jump in-0000a001",
		"fib saddr type local accept",
		"type ipv4_addr : verdict",
		"198.18.0.0/24",
	} {
		if out, _ := nftCLI(t, ns, "list", "ruleset"); !strings.Contains(out, w) {
			t.Errorf("nft list ruleset: no %q", w)
		}
	}
}

// chainLines returns the rules of chain name in an nft listing.
func chainLines(listing, name string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(listing, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "chain "+name+" {":
			in = true
		case in && l == "}":
			return out
		case in && l != "":
			out = append(out, l)
		}
	}
	return out
}

// TestKernelManyGroupChains: a batch of some 60k messages (6250 group
// chains with their rules) is acknowledged message by message; the
// receive buffer must hold all the acknowledgements (ENOBUFS otherwise,
// although the kernel applied the transaction).
func TestKernelManyGroupChains(t *testing.T) {
	ns := netnstest.New(t)
	cfg := Config{NetNS: int(ns), LogGroup: 1, LogRate: 1}
	d := bigDatapath(5000, 5000, 500)
	start := time.Now()
	res := mustApply(t, New(cfg), d)
	if !res.Recreate || res.ChainsAdded != 6250 || res.Writes < 50000 {
		t.Fatalf("Apply %+v", res)
	}
	cold := time.Since(start)
	start = time.Now()
	if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
		t.Fatalf("restart %+v, want no write", res)
	}
	t.Logf("%d messages in one transaction: %v; read back (6250 group chains) %v", res.Writes, cold.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
