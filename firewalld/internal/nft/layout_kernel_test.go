//go:build kernel

package nft

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/nftutil"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// previousLayout writes the table of this package's previous version (the
// one nft cannot list) in ns, in part: its sets of other types (ing_group4
// a map to marks, identities, a concatenated interval set of allow
// elements), its egress chain with a map lookup inside a concatenation,
// deny chains, a verdict map jumping to them, and its base chains.
func previousLayout(t *testing.T, ns netns.NsHandle) {
	t.Helper()
	c := nftConn(t, ns)
	tbl := c.AddTable(table())
	deny := c.AddChain(&nftables.Chain{Name: "deny-eg-0000a002", Table: tbl})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: deny, Exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}})
	sets := []struct {
		s     *nftables.Set
		elems []nftables.SetElement
	}{
		{&nftables.Set{Name: "eg_group4", IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeMark},
			[]nftables.SetElement{{Key: []byte{198, 18, 128, 3}, Val: mark(groupDB)}}},
		{&nftables.Set{Name: "pod_ident4", IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeMark},
			[]nftables.SetElement{{Key: []byte{198, 18, 140, 7}, Val: mark(0x0000b002)}}},
		{&nftables.Set{Name: "eg_allow", Interval: true, Concatenation: true,
			KeyType: nftables.MustConcatSetType(nftables.TypeMark, nftables.TypeMark, nftables.TypeInetProto, nftables.TypeInetService)},
			[]nftables.SetElement{{
				Key:    slices.Concat(mark(groupDB), mark(0x0000b002), []byte{6, 0, 0, 0, 0, 80, 0, 0}),
				KeyEnd: slices.Concat(mark(groupDB), mark(0x0000b002), []byte{6, 0, 0, 0, 0, 80, 0, 0})}}},
		{&nftables.Set{Name: "eg_deny4", IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict},
			[]nftables.SetElement{{Key: []byte{198, 18, 128, 3}, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: "deny-eg-0000a002"}}}},
	}
	for i, s := range sets {
		s.s.Table, s.s.ID, s.s.KeyByteOrder = tbl, uint32(i+1), binaryutil.BigEndian
		if err := c.AddSet(s.s, s.elems); err != nil {
			t.Fatalf("set %s: %v", s.s.Name, err)
		}
	}
	reg := nftutil.Reg32
	egress := c.AddChain(&nftables.Chain{Name: "egress", Table: tbl})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: egress, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg(0), Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: reg(0), Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: reg(0), DestRegister: reg(0), IsDestRegSet: true, SetName: "eg_group4"},
		&expr.Payload{DestRegister: reg(1), Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Lookup{SourceRegister: reg(1), DestRegister: reg(1), IsDestRegSet: true, SetName: "pod_ident4"},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg(2)},
		&expr.Payload{DestRegister: reg(3), Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: reg(0), SetName: "eg_allow"},
		&expr.Verdict{Kind: expr.VerdictReturn},
	}})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: egress, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg(0)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg(0), Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: reg(0), Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Lookup{SourceRegister: reg(0), DestRegister: unix.NFT_REG_VERDICT, IsDestRegSet: true, SetName: "eg_deny4"},
	}})
	pods := c.AddChain(&nftables.Chain{Name: "pods", Table: tbl})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: pods, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "egress"}}})
	accept := nftables.ChainPolicyAccept
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: tbl, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: fwd, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "pods"}}})
	if err := c.Flush(); err != nil {
		t.Fatalf("previous layout: %v", err)
	}
}

// mark is a model.ID as the previous layout's maps held it.
func mark(id model.ID) []byte { return []byte{byte(id >> 24), byte(id >> 16), byte(id >> 8), byte(id)} }

// foreignLayout is a table named like firewalld's that someone else
// wrote: a set of another type, a deny chain with an element jumping to
// it, a base chain dropping everything forwarded.
func foreignLayout(t *testing.T, ns netns.NsHandle) {
	t.Helper()
	c := nftConn(t, ns)
	tbl := c.AddTable(table())
	deny := c.AddChain(&nftables.Chain{Name: "in-0000a001", Table: tbl})
	c.AddRule(&nftables.Rule{Table: tbl, Chain: deny, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}})
	vmap := &nftables.Set{Table: tbl, Name: "ing_group4", ID: 1, IsMap: true, KeyType: nftables.TypeIPAddr, DataType: nftables.TypeVerdict}
	if err := c.AddSet(vmap, []nftables.SetElement{{Key: []byte{198, 18, 128, 2}, VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: "in-0000a001"}}}); err != nil {
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
		t.Fatalf("foreign layout: %v", err)
	}
}

// watchTable lists the tables of ns as fast as it can until the returned
// function is called, which fails the test if the table was ever missing
// and returns the number of reads.
func watchTable(t *testing.T, ns netns.NsHandle) func() int64 {
	t.Helper()
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
	return func() int64 {
		t.Helper()
		stop.Store(true)
		wg.Wait()
		if missing.Load() > 0 {
			t.Fatalf("a reader found no table %d times in %d reads", missing.Load(), reads.Load())
		}
		return reads.Load()
	}
}

// TestKernelReplacesPreviousLayout: the table live nodes have from this
// package's previous version (which nft cannot list) is replaced in one
// transaction, and nft lists what replaced it.
func TestKernelReplacesPreviousLayout(t *testing.T) {
	ns := netnstest.New(t)
	previousLayout(t, ns)
	out, err := nftCLIOptional(t, ns, "list", "ruleset")
	t.Logf("nft list ruleset over the previous layout: %v\n%s", err, out)

	// At cluster scale: the transaction takes a while, a reader meanwhile
	// finds the old table or the new one.
	d := benchDatapath()
	cfg := Config{NetNS: int(ns), LogGroup: 3, LogRate: 10}
	stop := watchTable(t, ns)
	res := mustApply(t, New(cfg), d)
	reads := stop()
	if !res.Recreate || res.ChainsAdded != 1250 {
		t.Fatalf("Apply over the previous layout %+v, want it replaced", res)
	}
	t.Logf("previous layout replaced (%s); the table was there in each of %d reads meanwhile", res.Reason, reads)
	holds(t, ns, cfg, d)
	if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
		t.Fatalf("then %+v, want nothing", res)
	}
	if out, err := nftCLI(t, ns, "list", "ruleset"); err != nil {
		t.Fatalf("nft list ruleset after the replacement: %v\n%s", err, out)
	}
}

func TestKernelReplacesForeignLayoutAtomically(t *testing.T) {
	ns := netnstest.New(t)
	foreignLayout(t, ns)
	foreignTables(t, ns)
	before := foreignState(t, ns)

	// A reader lists the tables as fast as it can while the table is
	// replaced, over and over: with one transaction per Apply it sees the
	// old table or the new one, never none.
	stop := watchTable(t, ns)

	d := baseDatapath()
	cfg := Config{NetNS: int(ns)}
	res := mustApply(t, New(cfg), d)
	if !res.Recreate || !strings.HasPrefix(res.Reason, "chain ") || res.Writes != recreateWrites(Config{}, d) {
		t.Fatalf("Apply over the foreign layout %+v, want it replaced", res)
	}
	t.Logf("foreign layout replaced: %s", res.Reason)
	// Replace it again and again: a foreign chain appears each round, and
	// every full Apply recreates the table.
	c := nftConn(t, ns)
	for i := range 30 {
		c.AddChain(&nftables.Chain{Name: "mine", Table: table()})
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		if res := mustApply(t, New(cfg), d); !res.Recreate || res.Reason != "chain mine is not firewalld's" {
			t.Fatalf("round %d: %+v, want the table recreated", i, res)
		}
	}
	t.Logf("%d reads during 31 replacements: the table was always there", stop())

	if res := mustApply(t, New(cfg), d); res != (Result{Full: true}) {
		t.Fatalf("after the replacements %+v, want the table as applied", res)
	}
	holds(t, ns, cfg, d)
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
	// The next ApplyDelta knows the table is gone.
	if res := mustApplyDelta(t, tb, baseDatapath(), model.NewDelta()); !res.Recreate || res.Reason != "table missing" {
		t.Fatalf("ApplyDelta after Delete %+v", res)
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

	// Elements: one of firewalld's deleted, a stranger added, a jump
	// changed.
	known := &nftables.Set{Table: ours, Name: "known_local4"}
	if err := c.SetDeleteElements(known, []nftables.SetElement{{Key: []byte{198, 18, 128, 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAddElements(known, []nftables.SetElement{{Key: []byte{198, 18, 128, 99}}}); err != nil {
		t.Fatal(err)
	}
	groups := &nftables.Set{Table: ours, Name: "ing_group4", IsMap: true, DataType: nftables.TypeVerdict}
	if err := c.SetDeleteElements(groups, []nftables.SetElement{{Key: []byte{198, 18, 128, 3}}}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAddElements(groups, []nftables.SetElement{{Key: []byte{198, 18, 128, 3},
		VerdictData: &expr.Verdict{Kind: expr.VerdictJump, Chain: "in-0000a001"}}}); err != nil {
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
	holds(t, ns, cfg, d)

	// A rule added to a group chain: the chain's rules are written again.
	c.AddRule(&nftables.Rule{Table: ours, Chain: &nftables.Chain{Name: "in-0000a002", Table: ours},
		Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
	// A group chain deleted (with the element jumping to it), and a peer
	// set no rule names.
	if err := c.SetDeleteElements(&nftables.Set{Table: ours, Name: "eg_group4", IsMap: true}, []nftables.SetElement{{Key: []byte{198, 18, 128, 3}}}); err != nil {
		t.Fatal(err)
	}
	c.DelChain(&nftables.Chain{Name: "out-0000a002", Table: ours})
	if err := c.AddSet(peerSetSpec("peer-0000f00d-4", false).nftSet(ours, 1), nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	want := Result{Writes: 1 + 3 + 1 + 3 + 1 + 1, Full: true, ElementsAdded: 1, ChainsAdded: 1, ChainsChanged: 1, PeerSetsDeleted: 1}
	if res := mustApply(t, tb, d); res != want {
		t.Fatalf("after chain drift %+v, want %+v", res, want)
	}
	holds(t, ns, cfg, d)

	// A rule added to a fixed chain: the table is recreated.
	c.AddRule(&nftables.Rule{Table: ours, Chain: &nftables.Chain{Name: chainPods, Table: ours},
		Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	if res := mustApply(t, tb, d); !res.Recreate || res.Reason != "chain pods: 9 rules, want 8" {
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
