//go:build kernel

package egress

// The real table against the host kernel, each test in a namespace of its
// own. Address plan: as the unit tests (node 198.18.0.10, pod CIDRs in
// 198.18.128.0/17, Services 198.19.128.0/17, IPv6 2001:db8::/32).

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/nodenet/nodenet/internal/nftutil"
	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/vishvananda/netns"
)

func baseDesired() Desired {
	return Desired{
		PodCIDRs:     pfx("198.18.128.0/24", "2001:db8:80::/64"),
		NoMasquerade: pfx("198.18.128.0/17", "198.19.128.0/17", "2001:db8::/48"),
	}
}

func mustApply(t *testing.T, i Interface, d Desired) Result {
	t.Helper()
	res, err := i.Apply(d)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func newKernelTable(t *testing.T, ns netns.NsHandle) *Table {
	t.Helper()
	tb := New(Config{NetNS: int(ns)})
	t.Cleanup(func() { _ = tb.Close() })
	return tb
}

// readBack reads the table in ns as a full Apply does.
func readBack(t *testing.T, ns netns.NsHandle) (content, string) {
	t.Helper()
	tb := newKernelTable(t, ns)
	c, why, err := tb.k.read()
	if err != nil {
		t.Fatal(err)
	}
	return c, why
}

// nftList is `nft list table inet nodenet-routerd` in ns, white space
// collapsed ("" when the nft binary is not installed: the read-back
// through netlink still checks).
func nftList(t *testing.T, ns netns.NsHandle) string {
	t.Helper()
	path, err := exec.LookPath("nft")
	if err != nil {
		t.Log("nft not installed: the table is checked through google/nftables only")
		return ""
	}
	var out bytes.Buffer
	cmd := exec.Command(path, "list", "table", "inet", TableName)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := netnstest.InNetns(ns, cmd.Start); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("nft list table: %v\n%s", err, out.Bytes())
	}
	// nft breaks long element lists over lines: one space for any run.
	return strings.Join(strings.Fields(out.String()), " ")
}

func TestKernelTable(t *testing.T) {
	ns := netnstest.New(t)
	tb := newKernelTable(t, ns)
	d := baseDesired()
	res := mustApply(t, tb, d)
	fake := NewFake()
	if want := mustApply(t, fake, d); res.Writes != want.Writes || res.ElementsAdded != want.ElementsAdded || !res.Recreate {
		t.Fatalf("first Apply %+v; the fake counts %+v", res, want)
	}
	got, why := readBack(t, ns)
	want, _ := build(d)
	if why != "" || !got.equal(want) {
		t.Fatalf("read back: %v (%s), want %v", got, why, want)
	}
	if listed := nftList(t, ns); listed != "" {
		for _, line := range []string{
			"table inet " + TableName + " {",
			"type nat hook postrouting priority srcnat; policy accept;",
			"elements = { 198.18.128.0/24 }",
			"elements = { 2001:db8:80::/64 }",
			"elements = { 198.18.128.0/17, 198.19.128.0/17 }",
			"elements = { 2001:db8::/48, 2001:db8:80::/64 }",
			ruleSpecs()[0].nft,
			ruleSpecs()[1].nft,
		} {
			if !strings.Contains(listed, line) {
				t.Errorf("nft lists no %q:\n%s", line, listed)
			}
		}
		if strings.Contains(listed, "owner") {
			t.Errorf("the table has the owner flag:\n%s", listed)
		}
	}

	// Nothing changed: no write; a full Apply only reads; a restarted
	// routerd (a new Table) writes nothing.
	if res := mustApply(t, tb, d); res.Writes != 0 || res.Full {
		t.Fatalf("second Apply %+v", res)
	}
	tb.Invalidate()
	if res := mustApply(t, tb, d); res.Writes != 0 || !res.Full || res.Recreate {
		t.Fatalf("Apply after Invalidate %+v", res)
	}
	if res := mustApply(t, newKernelTable(t, ns), d); res.Writes != 0 || !res.Full || res.Recreate {
		t.Fatalf("Apply after a restart %+v", res)
	}

	// Only CIDRs change, one range replaced by a larger one in the same
	// transaction: set elements only.
	d.PodCIDRs = pfx("198.18.128.0/23")
	d.NoMasquerade = pfx("198.18.128.0/17", "198.19.64.0/24")
	res = mustApply(t, tb, d)
	// pod_cidrs4 and cluster_cidrs4: one out, one in; pod_cidrs6 emptied,
	// and cluster_cidrs6 (which held the pod CIDR too).
	if res.Recreate || res.ElementsAdded != 2 || res.ElementsDeleted != 5 {
		t.Fatalf("CIDR change %+v", res)
	}
	if res := mustApply(t, newKernelTable(t, ns), d); res.Writes != 0 || res.Recreate {
		t.Fatalf("restart after the CIDR change %+v", res)
	}
	if listed := nftList(t, ns); listed != "" && !strings.Contains(listed, "elements = { 198.18.128.0/23 }") {
		t.Errorf("pod set after the change:\n%s", listed)
	}
}

func TestKernelRepairsDrift(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tamper   func(c *nftables.Conn, tbl *nftables.Table)
		recreate bool
	}{
		{"element deleted", func(c *nftables.Conn, tbl *nftables.Table) {
			s := setSpecs()[2].nftSet(tbl, 0)
			_ = c.SetDeleteElements(s, kernelElems([]ipRange{{first: mustAddr("198.19.128.0"), last: mustAddr("198.19.255.255")}}))
		}, false},
		{"element added", func(c *nftables.Conn, tbl *nftables.Table) {
			s := setSpecs()[0].nftSet(tbl, 0)
			_ = c.SetAddElements(s, kernelElems([]ipRange{{first: mustAddr("198.18.200.0"), last: mustAddr("198.18.200.255")}}))
		}, false},
		{"rule added", func(c *nftables.Conn, tbl *nftables.Table) {
			c.AddRule(&nftables.Rule{Table: tbl, Chain: postrouting(tbl), Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}})
		}, true},
		{"rule deleted", func(c *nftables.Conn, tbl *nftables.Table) {
			rules, _ := c.GetRules(tbl, postrouting(tbl))
			_ = c.DelRule(rules[1])
		}, true},
		{"chain added", func(c *nftables.Conn, tbl *nftables.Table) {
			c.AddChain(&nftables.Chain{Name: "mine", Table: tbl})
		}, true},
		{"set added", func(c *nftables.Conn, tbl *nftables.Table) {
			_ = c.AddSet(&nftables.Set{Table: tbl, Name: "old", KeyType: nftables.TypeIPAddr, ID: 9}, nil)
		}, true},
		{"chain priority", func(c *nftables.Conn, tbl *nftables.Table) {
			ch := postrouting(tbl)
			rules, _ := c.GetRules(tbl, ch)
			for _, r := range rules {
				_ = c.DelRule(r)
			}
			c.DelChain(ch)
			ch.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(110))
			c.AddChain(ch)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := netnstest.New(t)
			tb := newKernelTable(t, ns)
			d := baseDesired()
			mustApply(t, tb, d)
			c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
			if err != nil {
				t.Fatal(err)
			}
			tc.tamper(c, table())
			if err := c.Flush(); err != nil {
				t.Fatalf("tamper: %v", err)
			}
			if _, why := readBack(t, ns); (why != "") != tc.recreate {
				t.Fatalf("after tampering the layout reads as %q", why)
			}
			// Without Invalidate routerd trusts what it wrote.
			if res := mustApply(t, tb, d); res.Writes != 0 {
				t.Fatalf("Apply without Invalidate wrote: %+v", res)
			}
			tb.Invalidate()
			res := mustApply(t, tb, d)
			if res.Writes == 0 || res.Recreate != tc.recreate {
				t.Fatalf("repair %+v, want recreate %v", res, tc.recreate)
			}
			got, why := readBack(t, ns)
			want, _ := build(d)
			if why != "" || !got.equal(want) {
				t.Fatalf("after the repair: %v (%s)", got, why)
			}
		})
	}
}

// TestKernelReplacesForeignTable: a table of that name with another
// layout (an older routerd's, or anyone's) is replaced in one transaction.
func TestKernelReplacesForeignTable(t *testing.T) {
	ns := netnstest.New(t)
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	old := c.AddTable(table())
	accept := nftables.ChainPolicyAccept
	c.AddChain(&nftables.Chain{Name: "nat-postrouting", Table: old, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	res := mustApply(t, newKernelTable(t, ns), baseDesired())
	if !res.Recreate || !strings.Contains(res.Reason, "chain") {
		t.Fatalf("Apply over a foreign layout %+v", res)
	}
	if _, why := readBack(t, ns); why != "" {
		t.Fatalf("after the replacement: %s", why)
	}
}

func TestKernelDeleteOnlyItsTable(t *testing.T) {
	ns := netnstest.New(t)
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		t.Fatal(err)
	}
	// The same name in another family, and another inet table.
	c.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4})
	other := c.AddTable(&nftables.Table{Name: "other", Family: nftables.TableFamilyINet})
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: other, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	c.AddRule(&nftables.Rule{Table: other, Chain: ch, Exprs: []expr.Any{&expr.Counter{}}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	tb := newKernelTable(t, ns)
	mustApply(t, tb, baseDesired())
	if err := tb.Delete(); err != nil {
		t.Fatal(err)
	}
	if err := tb.Delete(); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tbl := range tables {
		names = append(names, tbl.Name+"/"+familyName(tbl.Family))
	}
	if strings.Join(names, " ") != TableName+"/ip other/inet" {
		t.Fatalf("tables after Delete: %v", names)
	}
	if rules, err := c.GetRules(other, ch); err != nil || len(rules) != 1 {
		t.Fatalf("the other table's rule: %v, %v", rules, err)
	}
	if found, err := nftutil.FindTable(c, TableName, nftables.TableFamilyINet); err != nil || found != nil {
		t.Fatalf("routerd's table after Delete: %v, %v", found, err)
	}
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	}
	return fmt.Sprint(f)
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
