//go:build kernel

package nft

// The real table against the host kernel, each test in namespaces of its
// own. Address plan: as the unit tests (VIPs 198.19.0.0/24 and
// 2001:db8:19::/64, pod CIDRs 198.18.128.0/24 and 2001:db8:80::/64).

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/internal/nftutil"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// readKernel reads proxyd's table in ns as a full Apply does.
func readKernel(t *testing.T, ns netns.NsHandle) (content, string) {
	t.Helper()
	c, why, err := (&kernel{netns: int(ns)}).read(newRuleset())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return c, why
}

func nftConn(t *testing.T, ns netns.NsHandle) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKernelCreateReadBackRestart(t *testing.T) {
	ns := netnstest.New(t)
	tb := New(Config{NetNS: int(ns)})
	d := Build(baseState(), basePods)

	res := mustApply(t, tb, d)
	fake := NewFake()
	if want := mustApply(t, fake, d); res != want {
		t.Fatalf("first Apply %+v; the fake counts %+v", res, want)
	}
	got, why := readKernel(t, ns)
	if why != "" {
		t.Fatalf("the table just written reads back as different: %s", why)
	}
	if !reflect.DeepEqual(got, encode(d)) {
		t.Fatalf("elements read back:\n%v\nwant\n%v", got, encode(d))
	}
	if rendered := newRuleset().render(got); !reflect.DeepEqual(rendered, fake.Dump().Sets) {
		t.Fatalf("kernel sets\n%v\nfake sets\n%v", rendered, fake.Dump().Sets)
	}

	if res := mustApply(t, tb, d); res != (Result{}) {
		t.Fatalf("second Apply %+v, want nothing", res)
	}
	tb.Invalidate()
	if res := mustApply(t, tb, d); res != (Result{Ops: Ops{Full: true}}) {
		t.Fatalf("full Apply of the same state %+v, want a read only", res)
	}
	// A restarted proxyd: a new Table over the same kernel.
	if res := mustApply(t, New(Config{NetNS: int(ns)}), d); res != (Result{Ops: Ops{Full: true}}) {
		t.Fatalf("after restart %+v, want no write", res)
	}
}

func TestKernelDeltas(t *testing.T) {
	for _, tc := range deltaCases() {
		t.Run(tc.name, func(t *testing.T) {
			ns := netnstest.New(t)
			tb := New(Config{NetNS: int(ns)})
			mustApply(t, tb, Build(baseState(), basePods))
			s, pods := baseState(), basePods
			tc.change(&s, &pods)
			d := Build(s, pods)
			if res := mustApply(t, tb, d); res != tc.want {
				t.Fatalf("Apply:\n got %+v\nwant %+v", res, tc.want)
			}
			// The kernel now holds exactly d: a restarted proxyd writes
			// nothing, and the elements are d's.
			if res := mustApply(t, New(Config{NetNS: int(ns)}), d); res != (Result{Ops: Ops{Full: true}}) {
				t.Fatalf("restart after the delta %+v, want no write", res)
			}
			got, _ := readKernel(t, ns)
			rendered := newRuleset().render(got)
			for set, want := range tc.sets {
				if !reflect.DeepEqual(rendered[set], want) {
					t.Errorf("set %s: %v, want %v", set, rendered[set], want)
				}
			}
		})
	}
}

// foreignTables creates tables that are not proxyd's in ns: an inet table
// with a set, a chain and a rule using it, and an ip table.
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
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	c.AddTable(&nftables.Table{Name: "nodenet-proxyd-not", Family: nftables.TableFamilyIPv4})
	if err := c.Flush(); err != nil {
		t.Fatalf("foreign tables: %v", err)
	}
}

// ruleset describes every table of ns except proxyd's: tables, chains,
// rule expressions, set elements.
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
					b, _ := nftutil.MarshalExpr(nftables.TableFamilyINet, e)
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

func TestKernelDeleteRemovesOnlyProxydsTable(t *testing.T) {
	ns := netnstest.New(t)
	foreignTables(t, ns)
	before := foreignState(t, ns)
	if !strings.Contains(before, "set blocked: [c6120042]") {
		t.Fatalf("foreign tables not as created:\n%s", before)
	}
	tb := New(Config{NetNS: int(ns)})
	mustApply(t, tb, Build(baseState(), basePods))
	if err := tb.Delete(); err != nil {
		t.Fatal(err)
	}
	tbl, err := find(nftConn(t, ns))
	if err != nil || tbl != nil {
		t.Fatalf("proxyd's table after Delete: %v, %v", tbl, err)
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
}

func TestKernelLeavesConcurrentForeignTablesAlone(t *testing.T) {
	ns := netnstest.New(t)
	foreignTables(t, ns)

	// Another daemon keeps writing its own table while proxyd syncs.
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
		if err != nil {
			errs <- err
			return
		}
		set := &nftables.Set{Table: &nftables.Table{Name: "firewall", Family: nftables.TableFamilyINet}, Name: "blocked"}
		for i := range n {
			if err := c.SetAddElements(set, []nftables.SetElement{{Key: []byte{198, 18, 1, byte(i)}}}); err != nil {
				errs <- err
				return
			}
			if err := c.Flush(); err != nil {
				errs <- fmt.Errorf("foreign transaction %d: %w", i, err)
				return
			}
		}
	}()

	tb := New(Config{NetNS: int(ns)})
	s := baseState()
	for i := range 20 {
		s.Services = append(s.Services, vs(key(fmt.Sprintf("198.19.1.%d", i), 80, model.TCP), model.ClusterIP))
		tb.Invalidate() // read the kernel every time, while the other writes
		if _, err := tb.Apply(Build(s, basePods)); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	state := foreignState(t, ns)
	c := nftConn(t, ns)
	els, err := c.GetSetElements(&nftables.Set{Table: &nftables.Table{Name: "firewall", Family: nftables.TableFamilyINet}, Name: "blocked"})
	if err != nil || len(els) != n+1 {
		t.Fatalf("foreign set has %d elements (%v), want %d:\n%s", len(els), err, n+1, state)
	}
	if res := mustApply(t, New(Config{NetNS: int(ns)}), Build(s, basePods)); res != (Result{Ops: Ops{Full: true}}) {
		t.Fatalf("proxyd's table is not as applied: %+v", res)
	}
}

func TestKernelRepairsChanges(t *testing.T) {
	ns := netnstest.New(t)
	tb := New(Config{NetNS: int(ns)})
	d := Build(baseState(), basePods)
	mustApply(t, tb, d)
	ours := table()

	// Elements: one of proxyd's deleted, a stranger added.
	c := nftConn(t, ns)
	vips := &nftables.Set{Table: ours, Name: setVIPs4}
	if err := c.SetDeleteElements(vips, []nftables.SetElement{{Key: vipKey(key("198.19.0.10", 80, model.TCP))}}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetAddElements(vips, []nftables.SetElement{{Key: vipKey(key("198.19.0.99", 80, model.TCP))}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	if res := mustApply(t, tb, d); res != (Result{Writes: 2, Ops: Ops{Full: true, ElementsAdded: 1, ElementsDeleted: 1}}) {
		t.Fatalf("after element drift %+v, want the two repaired", res)
	}

	// A rule added to proxyd's chain: the table is recreated.
	c.AddRule(&nftables.Rule{Table: ours, Chain: &nftables.Chain{Name: chainPrerouting, Table: ours},
		Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	res := mustApply(t, tb, d)
	if !res.Ops.Recreate || res.Ops.Reason != "chain prerouting: 8 rules, want 7" {
		t.Fatalf("after a foreign rule %+v, want the table recreated", res)
	}

	// A rule of proxyd's replaced by a different one (same comment).
	rules, err := c.GetRules(ours, &nftables.Chain{Name: chainPostrouting, Table: ours})
	if err != nil {
		t.Fatal(err)
	}
	r := rules[0]
	r.Exprs = []expr.Any{&expr.Masq{}}
	c.ReplaceRule(r)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	if res := mustApply(t, tb, d); !res.Ops.Recreate || !strings.Contains(res.Ops.Reason, "rule 1 (masquerade marked) differs") {
		t.Fatalf("after a changed rule %+v, want the table recreated", res)
	}

	// A set added to the table.
	if err := c.AddSet(&nftables.Set{Table: ours, Name: "extra", KeyType: nftables.TypeIPAddr, ID: 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb.Invalidate()
	if res := mustApply(t, tb, d); !res.Ops.Recreate || res.Ops.Reason != "11 sets, want 10" {
		t.Fatalf("after a foreign set %+v, want the table recreated", res)
	}
	if res := mustApply(t, New(Config{NetNS: int(ns)}), d); res != (Result{Ops: Ops{Full: true}}) {
		t.Fatalf("after the repairs %+v, want a table as applied", res)
	}
}

func TestKernelLargeTable(t *testing.T) {
	vipsOnly := bigState()
	vipsOnly.Services = vipsOnly.Services[:len(vipsOnly.Services)-1]
	for _, tc := range []struct {
		name  string
		state model.State
	}{
		{"10k VIPs", vipsOnly},
		{"10k VIPs and 2000 IPv6 source ranges", bigState()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := netnstest.New(t)
			tb := New(Config{NetNS: int(ns)})
			s := tc.state
			d := Build(s, basePods)

			start := time.Now()
			res := mustApply(t, tb, d)
			cold := time.Since(start)
			if !res.Ops.Recreate || res.Ops.ElementsAdded != len(d.VIPs)+len(d.Restricted)+len(d.Allowed)+len(d.PodCIDRs) {
				t.Fatalf("cold Apply %+v", res)
			}
			coldWrites := res.Writes

			s.Services = append(slices.Clone(s.Services), vs(key("198.19.200.1", 443, model.TCP), model.ClusterIP))
			d1 := Build(s, basePods)
			start = time.Now()
			res = mustApply(t, tb, d1)
			delta := time.Since(start)
			if res != (Result{Writes: 1, Ops: Ops{ElementsAdded: 1}}) {
				t.Fatalf("delta Apply %+v", res)
			}

			start = time.Now()
			res = mustApply(t, New(Config{NetNS: int(ns)}), d1)
			restart := time.Since(start)
			if res != (Result{Ops: Ops{Full: true}}) {
				t.Fatalf("restart %+v, want no write", res)
			}
			t.Logf("cold Apply %v (%d messages), delta of one element %v, restart with nothing changed (full read) %v",
				cold.Round(time.Microsecond), coldWrites, delta.Round(time.Microsecond), restart.Round(time.Microsecond))
		})
	}
}

// benchStates are the benchmarks' desired states: 10k VIPs, and the same
// with an IPv6 LoadBalancer of 2000 source ranges.
func benchStates() []struct {
	name  string
	state model.State
} {
	vipsOnly := bigState()
	vipsOnly.Services = vipsOnly.Services[:len(vipsOnly.Services)-1]
	return []struct {
		name  string
		state model.State
	}{{"10kVIPs", vipsOnly}, {"10kVIPs+2000ranges", bigState()}}
}

// BenchmarkKernelApplyCold measures creating the table, in a fresh
// namespace each time.
func BenchmarkKernelApplyCold(b *testing.B) {
	for _, bs := range benchStates() {
		b.Run(bs.name, func(b *testing.B) {
			d := Build(bs.state, basePods)
			for range b.N {
				b.StopTimer()
				ns := benchNetns(b)
				tb := New(Config{NetNS: int(ns)})
				b.StartTimer()
				if _, err := tb.Apply(d); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = ns.Close()
				b.StartTimer()
			}
		})
	}
}

// BenchmarkKernelApplyDelta measures one Apply that adds one VIP beside
// the others, and one that removes it (the kernel makes a transaction that
// deletes set elements wait for an RCU grace period: it costs more).
func BenchmarkKernelApplyDelta(b *testing.B) {
	for _, bs := range benchStates() {
		ns := benchNetns(b)
		tb := New(Config{NetNS: int(ns)})
		s := bs.state
		without := Build(s, basePods)
		s.Services = append(slices.Clone(s.Services), vs(key("198.19.200.1", 443, model.TCP), model.ClusterIP))
		with := Build(s, basePods)
		if _, err := tb.Apply(without); err != nil {
			b.Fatal(err)
		}
		for _, step := range []struct {
			name           string
			measured, back Desired
		}{{"add", with, without}, {"remove", without, with}} {
			b.Run(bs.name+"/"+step.name, func(b *testing.B) {
				for range b.N {
					b.StopTimer()
					if _, err := tb.Apply(step.back); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if _, err := tb.Apply(step.measured); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		_ = ns.Close()
	}
}

// BenchmarkKernelFullNoChange measures a full Apply (read everything back)
// that finds nothing to do: a restart.
func BenchmarkKernelFullNoChange(b *testing.B) {
	for _, bs := range benchStates() {
		b.Run(bs.name, func(b *testing.B) {
			ns := benchNetns(b)
			defer func() { _ = ns.Close() }()
			tb := New(Config{NetNS: int(ns)})
			d := Build(bs.state, basePods)
			if _, err := tb.Apply(d); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				tb.Invalidate()
				if res, err := tb.Apply(d); err != nil || res.Writes != 0 {
					b.Fatal(res, err)
				}
			}
		})
	}
}

func benchNetns(b *testing.B) netns.NsHandle {
	b.Helper()
	var ns netns.NsHandle
	if err := netnstest.OnThread(func() (err error) {
		ns, err = netns.New()
		return err
	}); err != nil {
		b.Skipf("needs root: %v", err)
	}
	return ns
}
