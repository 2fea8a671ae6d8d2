//go:build kernel

package nft

// The real table against the host kernel, each test in namespaces of its
// own. Address plan: as the unit tests (helpers_test.go); IPv6 addresses
// (2001:db8::/32) are set contents only, never on an interface.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/nftutil"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// readKernel reads firewalld's table in ns as a full Apply does.
func readKernel(t testing.TB, ns netns.NsHandle, cfg Config) (*content, string) {
	t.Helper()
	log, err := newLogConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, why, err := (&kernel{netns: int(ns)}).read(newRuleset(log))
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return c, why
}

func TestKernelCreateReadBackRestart(t *testing.T) {
	for _, cfg := range []Config{{}, {LogGroup: 5, LogRate: 10, LogBurst: 20}, {LogGroup: 6, LogRate: 1}} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			ns := netnstest.New(t)
			cfg.NetNS = int(ns)
			tb := New(cfg)
			d := baseDatapath()

			res := mustApply(t, tb, d)
			fake := NewFake(cfg)
			if want := mustApply(t, fake, d); res != want {
				t.Fatalf("first Apply %+v; the fake counts %+v", res, want)
			}
			got, why := readKernel(t, ns, cfg)
			if why != "" {
				t.Fatalf("the table just written reads back as different: %s", why)
			}
			want := encode(d)
			if !reflect.DeepEqual(got.elems, want.elems) || !reflect.DeepEqual(got.chains, want.chains) {
				t.Fatalf("read back:\n%v %v\nwant\n%v %v", got.elems, got.chains, want.elems, want.chains)
			}
			if rendered := newRuleset(logConfig{}).render(got.elems); !reflect.DeepEqual(rendered, fake.Dump().Sets) {
				t.Fatalf("kernel sets\n%v\nfake sets\n%v", rendered, fake.Dump().Sets)
			}

			if res := mustApply(t, tb, d); res != (Result{}) {
				t.Fatalf("second Apply %+v, want nothing", res)
			}
			tb.Invalidate()
			if res := mustApply(t, tb, d); res != (Result{Full: true}) {
				t.Fatalf("full Apply of the same Datapath %+v, want a read only", res)
			}
			// A restarted firewalld: a new Table over the same kernel.
			if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
				t.Fatalf("after restart %+v, want no write", res)
			}
		})
	}
}

func TestKernelDeltas(t *testing.T) {
	for _, tc := range deltaCases() {
		t.Run(tc.name, func(t *testing.T) {
			ns := netnstest.New(t)
			cfg := Config{NetNS: int(ns), LogGroup: 2, LogRate: 5}
			tb := New(cfg)
			mustApply(t, tb, baseDatapath())
			d := baseDatapath()
			tc.change(d)
			want := tc.want
			if want.ChainsAdded > 0 {
				want.Writes += want.ChainsAdded // logging: two rules per deny chain
			}
			if res := mustApply(t, tb, d); res != want {
				t.Fatalf("Apply:\n got %+v\nwant %+v", res, want)
			}
			// The kernel now holds exactly d: a restarted firewalld writes
			// nothing, and the content is d's.
			if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
				t.Fatalf("restart after the delta %+v, want no write", res)
			}
			got, _ := readKernel(t, ns, cfg)
			rendered := newRuleset(logConfig{}).render(got.elems)
			for set, want := range tc.sets {
				if !reflect.DeepEqual(rendered[set], want) {
					t.Errorf("set %s: %v, want %v", set, rendered[set], want)
				}
			}
			if tc.chains != nil && !reflect.DeepEqual(got.sortedChains(), tc.chains) {
				t.Errorf("deny chains %v, want %v", got.sortedChains(), tc.chains)
			}
		})
	}
}

// oldLayout writes a table named like firewalld's in ns the way an older
// (or foreign) version might have: an owner-less table with a set of
// another type, a deny chain with another rule and an element jumping to
// it, a base chain dropping everything forwarded.
func oldLayout(t *testing.T, ns netns.NsHandle) {
	t.Helper()
	c := nftConn(t, ns)
	tbl := c.AddTable(table())
	deny := c.AddChain(&nftables.Chain{Name: "deny-in-0000a001", Table: tbl})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: deny, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}})
	vmap := &nftables.Set{Table: tbl, Name: "ing_deny4", ID: 1, IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict}
	if err := c.AddSet(vmap, []nftables.SetElement{{Key: []byte{198, 18, 128, 2}, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: "deny-in-0000a001"}}}); err != nil {
		t.Fatal(err)
	}
	old := &nftables.Set{Table: tbl, Name: "pods_v1", ID: 2, KeyType: nftables.TypeIPAddr}
	if err := c.AddSet(old, []nftables.SetElement{{Key: []byte{198, 18, 128, 9}}}); err != nil {
		t.Fatal(err)
	}
	drop := nftables.ChainPolicyDrop
	c.AddChain(&nftables.Chain{Name: "forward", Table: tbl, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	if err := c.Flush(); err != nil {
		t.Fatalf("old layout: %v", err)
	}
}

func TestKernelReplacesOldLayoutAtomically(t *testing.T) {
	ns := netnstest.New(t)
	oldLayout(t, ns)
	foreignTables(t, ns)
	before := foreignState(t, ns)

	// A reader lists the tables as fast as it can while the table is
	// replaced, over and over: with one transaction per Apply it sees the
	// old table or the new one, never none.
	var stop atomic.Bool
	var missing, reads atomic.Int64
	var wg sync.WaitGroup
	reader := nftConn(t, ns)
	wg.Go(func() {
		for !stop.Load() {
			tbl, err := nftutil.FindTable(reader, TableName, nftables.TableFamilyINet)
			if err == nil && tbl == nil {
				missing.Add(1)
			}
			reads.Add(1)
		}
	})

	d := baseDatapath()
	tb := New(Config{NetNS: int(ns)})
	res := mustApply(t, tb, d)
	if !res.Recreate || !strings.HasPrefix(res.Reason, "chain ") || res.Writes != recreateWrites(Config{}, d) {
		t.Fatalf("Apply over the old layout %+v, want it replaced", res)
	}
	t.Logf("old layout replaced: %s", res.Reason)
	// Replace it again and again: log settings alternate, so every full
	// Apply recreates.
	for i := range 30 {
		cfg := Config{NetNS: int(ns)}
		if i%2 == 0 {
			cfg.LogGroup, cfg.LogRate = 1, 10
		}
		if res := mustApply(t, New(cfg), d); !res.Recreate {
			t.Fatalf("round %d: %+v, want the table recreated", i, res)
		}
	}
	stop.Store(true)
	wg.Wait()
	if missing.Load() > 0 {
		t.Fatalf("a reader found no table %d times in %d reads", missing.Load(), reads.Load())
	}
	t.Logf("%d reads during 31 replacements: the table was always there", reads.Load())

	if res := mustApply(t, New(Config{NetNS: int(ns)}), d); res != (Result{Full: true}) { // round 29 had no logging
		t.Fatalf("after the replacements %+v, want the table as applied", res)
	}
	if after := foreignState(t, ns); after != before {
		t.Fatalf("replacing the table changed other tables:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// foreignTables creates tables that are not firewalld's in ns: an inet
// table with a set, a chain and a rule using it, and an ip table.
func foreignTables(t *testing.T, ns netns.NsHandle) {
	t.Helper()
	c := nftConn(t, ns)
	other := c.AddTable(&nftables.Table{Name: "firewall", Family: nftables.TableFamilyINet})
	set := &nftables.Set{Table: other, Name: "blocked", KeyType: nftables.TypeIPAddr, ID: 1}
	if err := c.AddSet(set, []nftables.SetElement{{Key: []byte{198, 18, 0, 66}}}); err != nil {
		t.Fatal(err)
	}
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: other, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: other, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: 1, SetName: "blocked"},
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	c.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}) // same name, other family
	if err := c.Flush(); err != nil {
		t.Fatalf("foreign tables: %v", err)
	}
}

// foreignState describes every table of ns except firewalld's: tables,
// chains, rule expressions, set elements.
func foreignState(t *testing.T, ns netns.NsHandle) string {
	t.Helper()
	c := nftConn(t, ns)
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := c.ListChains()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tbl := range tables {
		if tbl.Name == TableName && tbl.Family == nftables.TableFamilyINet {
			continue
		}
		out = append(out, fmt.Sprintf("table %d %s", tbl.Family, tbl.Name))
		for _, ch := range chains {
			if ch.Table.Name != tbl.Name || ch.Table.Family != tbl.Family {
				continue
			}
			rules, err := c.GetRules(tbl, ch)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rules {
				var es []string
				for _, e := range r.Exprs {
					b, _ := expr.Marshal(byte(tbl.Family), e)
					es = append(es, fmt.Sprintf("%x", b))
				}
				out = append(out, fmt.Sprintf("  chain %s handle %d: %s", ch.Name, r.Handle, strings.Join(es, " ")))
			}
		}
		sets, err := c.GetSets(tbl)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sets {
			els, err := c.GetSetElements(s)
			if err != nil {
				t.Fatal(err)
			}
			var es []string
			for _, e := range els {
				es = append(es, fmt.Sprintf("%x", e.Key))
			}
			slices.Sort(es)
			out = append(out, fmt.Sprintf("  set %s: %v", s.Name, es))
		}
	}
	return strings.Join(out, "\n")
}

func TestKernelDeleteRemovesOnlyFirewalldsTable(t *testing.T) {
	ns := netnstest.New(t)
	foreignTables(t, ns)
	before := foreignState(t, ns)
	if !strings.Contains(before, "set blocked: [c6120042]") || !strings.Contains(before, "table 2 "+TableName) {
		t.Fatalf("foreign tables not as created:\n%s", before)
	}
	tb := New(Config{NetNS: int(ns), LogGroup: 1, LogRate: 1})
	mustApply(t, tb, baseDatapath())
	if err := tb.Delete(); err != nil {
		t.Fatal(err)
	}
	tbl, err := nftutil.FindTable(nftConn(t, ns), TableName, nftables.TableFamilyINet)
	if err != nil || tbl != nil {
		t.Fatalf("firewalld's table after Delete: %v, %v", tbl, err)
	}
	if after := foreignState(t, ns); after != before {
		t.Fatalf("Delete changed other tables:\nbefore\n%s\nafter\n%s", before, after)
	}
	// Nothing to delete: no error, nothing written.
	if err := tb.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	if after := foreignState(t, ns); after != before {
		t.Fatalf("second Delete changed other tables")
	}
	// The next Apply knows the table is gone.
	if res := mustApply(t, tb, baseDatapath()); !res.Recreate || res.Reason != "table missing" {
		t.Fatalf("Apply after Delete %+v", res)
	}
}

func TestKernelRepairsChanges(t *testing.T) {
	ns := netnstest.New(t)
	cfg := Config{NetNS: int(ns)}
	tb := New(cfg)
	d := baseDatapath()
	mustApply(t, tb, d)
	ours := table()
	c := nftConn(t, ns)

	// Elements: one of firewalld's deleted, a stranger added, a value
	// changed.
	known := &nftables.Set{Table: ours, Name: "known_local4"}
	if err := c.SetDeleteElements(known, []nftables.SetElement{{Key: []byte{198, 18, 128, 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAddElements(known, []nftables.SetElement{{Key: []byte{198, 18, 128, 99}}}); err != nil {
		t.Fatal(err)
	}
	groups := &nftables.Set{Table: ours, Name: "ing_group4", IsMap: true}
	if err := c.SetDeleteElements(groups, []nftables.SetElement{{Key: []byte{198, 18, 128, 3}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAddElements(groups, []nftables.SetElement{{Key: []byte{198, 18, 128, 3}, Val: mark(groupWeb)}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	// A delete and an add in each of two sets.
	if res := mustApply(t, tb, d); res != (Result{Writes: 4, Full: true, ElementsAdded: 2, ElementsDeleted: 2}) {
		t.Fatalf("after element drift %+v, want the three repaired", res)
	}

	// A deny chain deleted behind firewalld's back (with its element):
	// created again.
	if err := c.SetDeleteElements(&nftables.Set{Table: ours, Name: "eg_deny4", IsMap: true}, []nftables.SetElement{{Key: []byte{198, 18, 128, 3}}}); err != nil {
		t.Fatal(err)
	}
	c.DelChain(&nftables.Chain{Name: "deny-eg-0000a002", Table: ours})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	if res := mustApply(t, tb, d); res != (Result{Writes: 3, Full: true, ElementsAdded: 1, ChainsAdded: 1}) {
		t.Fatalf("after a deny chain went %+v, want it back", res)
	}

	// A rule added to a fixed chain: the table is recreated.
	c.AddRule(&nftables.Rule{Table: ours, Chain: &nftables.Chain{Name: chainPods, Table: ours},
		Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	if res := mustApply(t, tb, d); !res.Recreate || res.Reason != "chain pods: 7 rules, want 6" {
		t.Fatalf("after a foreign rule %+v, want the table recreated", res)
	}

	// A foreign chain in the table.
	c.AddChain(&nftables.Chain{Name: "mine", Table: ours})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	if res := mustApply(t, tb, d); !res.Recreate || res.Reason != "chain mine is not firewalld's" {
		t.Fatalf("after a foreign chain %+v, want the table recreated", res)
	}
	if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
		t.Fatalf("after the repairs %+v, want a table as applied", res)
	}
}

func TestKernelLargeTable(t *testing.T) {
	ns := netnstest.New(t)
	cfg := Config{NetNS: int(ns), LogGroup: 1, LogRate: 10}
	tb := New(cfg)
	d := bigDatapath(10000, 1000, largeAllowElements)
	elements := encode(d).elems.count()

	start := time.Now()
	res := mustApply(t, tb, d)
	cold := time.Since(start)
	if !res.Recreate || res.ElementsAdded != elements || res.ChainsAdded != 1250 {
		t.Fatalf("cold Apply %+v", res)
	}
	coldWrites := res.Writes

	d.IngressAllow[model.Allow{Group: 0x00200001, Ident: 0x00100001, Ports: tcp(5)}] = struct{}{}
	start = time.Now()
	res = mustApply(t, tb, d)
	deltaAdd := time.Since(start)
	if res != (Result{Writes: 1, ElementsAdded: 1}) {
		t.Fatalf("delta Apply %+v", res)
	}

	// A new group: its chain, rules and elements.
	g := addr("198.18.200.1")
	d.KnownLocal[g] = struct{}{}
	d.IngressGroup[g] = 0x00400001
	start = time.Now()
	res = mustApply(t, tb, d)
	deltaGroup := time.Since(start)
	if res != (Result{Writes: 3 + 3, ElementsAdded: 3, ChainsAdded: 1}) {
		t.Fatalf("new group %+v", res)
	}

	start = time.Now()
	res = mustApply(t, New(cfg), d)
	restart := time.Since(start)
	if res != (Result{Full: true}) {
		t.Fatalf("restart %+v, want no write", res)
	}
	got, why := readKernel(t, ns, cfg)
	if why != "" || got.elems.count() != elements+4 || len(got.chains) != 1251 {
		t.Fatalf("read back %d elements, %d chains (%s)", got.elems.count(), len(got.chains), why)
	}
	t.Logf("%d elements, 1250 deny chains: cold Apply %v (%d messages, %.0f elements/s); one allow element %v; a new group %v; restart with nothing changed (full read) %v",
		elements, cold.Round(time.Millisecond), coldWrites, float64(elements)/cold.Seconds(),
		deltaAdd.Round(time.Microsecond), deltaGroup.Round(time.Microsecond), restart.Round(time.Millisecond))
}

func TestKernelNftPrints(t *testing.T) {
	ns := netnstest.New(t)
	mustApply(t, New(Config{NetNS: int(ns), LogGroup: 5, LogRate: 10}), baseDatapath())
	// What nft can print, as doc.go shows it.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"list", "chain", "inet", TableName, "forward"}, []string{
			"type filter hook forward priority filter; policy accept;",
			"ct state established,related accept",
			"jump pods"}},
		{[]string{"list", "chain", "inet", TableName, "output"}, []string{
			"type filter hook output priority filter; policy accept;",
			"fib saddr type local accept"}},
		{[]string{"list", "chain", "inet", TableName, "pods"}, []string{
			"ip saddr @local_cidrs4 ip saddr != @known_local4 counter packets 0 bytes 0 drop",
			"ip6 daddr @local_cidrs6 ip6 daddr != @known_local6 counter packets 0 bytes 0 drop",
			"jump egress", "jump ingress"}},
		{[]string{"list", "chain", "inet", TableName, "deny-in-0000a001"}, []string{
			`counter packets 0 bytes 0 limit rate 10/second log prefix "nodenet deny in 0000a001 " group 5`,
			"drop"}},
		{[]string{"list", "maps", "inet"}, []string{
			"198.18.128.2 : 0x0000a001",
			"198.18.0.0/24 : 0x0000c001, 198.18.1.0-198.18.255.255 : 0x0000c002",
			"198.18.128.2 : jump deny-in-0000a001"}},
		{[]string{"list", "sets", "inet"}, []string{
			"type mark . mark . inet_proto . inet_service",
			"0x0000a001 . 0x0000c001 . tcp . 8000-8999",
			"0x0000a002 . 0x0000b002 . 0-255 . 0-65535"}},
	} {
		out, err := nftCLI(t, ns, tc.args...)
		if err != nil {
			t.Fatalf("nft %v: %v\n%s", tc.args, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("nft %v: no %q in\n%s", tc.args, w, out)
			}
		}
		t.Logf("nft %s\n%s", strings.Join(tc.args, " "), out)
	}
	// The egress and ingress rules (a map lookup's result inside a
	// concatenation) are beyond nft 1.0.6: it aborts on them, and so on
	// anything that lists the table's rules (doc.go).
	out, err := nftCLI(t, ns, "list", "chain", "inet", TableName, "egress")
	t.Logf("nft list chain inet %s egress: %v\n%s", TableName, err, out)
}

// TestKernelManyDenyChains: a batch of some 19k messages (6250 deny chains
// with two rules each) is acknowledged message by message; the receive
// buffer must hold all the acknowledgements (ENOBUFS otherwise, although
// the kernel applied the transaction).
func TestKernelManyDenyChains(t *testing.T) {
	ns := netnstest.New(t)
	cfg := Config{NetNS: int(ns), LogGroup: 1, LogRate: 1}
	d := bigDatapath(5000, 5000, 1000)
	start := time.Now()
	res := mustApply(t, New(cfg), d)
	if !res.Recreate || res.ChainsAdded != 6250 || res.Writes < 18000 {
		t.Fatalf("Apply %+v", res)
	}
	cold := time.Since(start)
	start = time.Now()
	if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
		t.Fatalf("restart %+v, want no write", res)
	}
	t.Logf("%d messages in one transaction: %v; read back (6250 deny chains) %v", res.Writes, cold.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
