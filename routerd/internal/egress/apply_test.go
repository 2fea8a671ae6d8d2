package egress

import (
	"errors"
	"slices"
	"testing"
)

// recreateWrites is the messages of a table created anew without
// elements: table add, delete, add; four sets; the chain; two rules.
const recreateWrites = 3 + 4 + 1 + 2

func TestFakeApply(t *testing.T) {
	f := NewFake()
	d := Desired{PodCIDRs: pfx("198.18.128.0/24"), NoMasquerade: pfx("198.18.128.0/17", "198.19.128.0/17")}

	res := apply(t, f, d)
	if !res.Full || !res.Recreate || res.Reason != "table missing" || res.ElementsAdded != 3 {
		t.Errorf("first Apply: %+v", res)
	}
	// One element message per non-empty set: pod_cidrs4, cluster_cidrs4.
	if res.Writes != recreateWrites+2 {
		t.Errorf("first Apply: %d writes, want %d", res.Writes, recreateWrites+2)
	}
	checkSets(t, f, map[string][]string{
		setPodCIDRs4:     {"198.18.128.0/24"},
		setClusterCIDRs4: {"198.18.128.0/17", "198.19.128.0/17"},
	})

	// The same again: nothing to write, the kernel not read.
	if res := apply(t, f, d); res.Writes != 0 || res.Full {
		t.Errorf("second Apply: %+v", res)
	}

	// A restart: a new applier over the same kernel reads it and writes
	// nothing.
	restarted := &Fake{a: applier{be: f.k}, k: f.k}
	if res := apply(t, restarted, d); res.Writes != 0 || !res.Full || res.Recreate {
		t.Errorf("Apply after a restart: %+v", res)
	}

	// Only the pod CIDR changes: elements only.
	d.PodCIDRs = pfx("198.18.130.0/24")
	res = apply(t, f, d)
	// pod_cidrs4: delete one, add one; cluster_cidrs4 unchanged (the new
	// pod CIDR is inside the /17).
	if res.Recreate || res.ElementsAdded != 1 || res.ElementsDeleted != 1 || res.Writes != 2 {
		t.Errorf("pod CIDR change: %+v", res)
	}
	checkSets(t, f, map[string][]string{
		setPodCIDRs4:     {"198.18.130.0/24"},
		setClusterCIDRs4: {"198.18.128.0/17", "198.19.128.0/17"},
	})
	if n := f.Dump().Transactions; n != 2 {
		t.Errorf("%d transactions, want 2", n)
	}
}

func TestFakeRepairs(t *testing.T) {
	f := NewFake()
	d := Desired{PodCIDRs: pfx("198.18.128.0/24", "2001:db8:80::/64"), NoMasquerade: pfx("198.18.128.0/17")}
	apply(t, f, d)

	// Someone changes the table: without Invalidate routerd trusts what it
	// wrote; after it, the table is replaced whole.
	f.Tamper("chain postrouting: rule 1 differs")
	if res := apply(t, f, d); res.Writes != 0 {
		t.Errorf("Apply without Invalidate: %+v", res)
	}
	f.Invalidate()
	res := apply(t, f, d)
	if !res.Full || !res.Recreate || res.Reason != "chain postrouting: rule 1 differs" {
		t.Errorf("Apply after Invalidate: %+v", res)
	}

	// A failed transaction changes nothing; the next Apply reads the
	// kernel and makes the change.
	f.FailNext(errors.New("EPERM"))
	d2 := Desired{PodCIDRs: pfx("198.18.129.0/24"), NoMasquerade: pfx("198.18.128.0/17")}
	if res, err := f.Apply(d2); err == nil || res.Writes != 0 {
		t.Fatalf("failed Apply: %+v, %v", res, err)
	}
	res = apply(t, f, d2)
	// pod_cidrs4: one out, one in; pod_cidrs6 and cluster_cidrs6 emptied.
	if !res.Full || res.Recreate || res.ElementsAdded != 1 || res.ElementsDeleted != 3 {
		t.Errorf("Apply after a failure: %+v", res)
	}
	checkSets(t, f, map[string][]string{
		setPodCIDRs4:     {"198.18.129.0/24"},
		setClusterCIDRs4: {"198.18.128.0/17"},
	})

	// Delete removes the table; the next Apply creates it again.
	if err := f.Delete(); err != nil {
		t.Fatal(err)
	}
	if f.Dump().Exists {
		t.Fatal("table still there after Delete")
	}
	if res := apply(t, f, d2); !res.Recreate || res.Reason != "table missing" {
		t.Errorf("Apply after Delete: %+v", res)
	}
}

func TestFakeSkipsInvalid(t *testing.T) {
	f := NewFake()
	d := Desired{PodCIDRs: append(pfx("198.18.128.0/24"), pfx("::ffff:198.18.0.0/112")...)}
	d.NoMasquerade = append(d.NoMasquerade, d.PodCIDRs[0], d.PodCIDRs[1])
	d.NoMasquerade[1] = d.NoMasquerade[1].Masked() // still mapped
	d.PodCIDRs = append(d.PodCIDRs, d.PodCIDRs[0]) // duplicates are fine
	res := apply(t, f, d)
	if len(res.Skipped) != 2 {
		t.Errorf("skipped %v, want the mapped prefix twice", res.Skipped)
	}
	checkSets(t, f, map[string][]string{setPodCIDRs4: {"198.18.128.0/24"}, setClusterCIDRs4: {"198.18.128.0/24"}})
}

func apply(t *testing.T, f *Fake, d Desired) Result {
	t.Helper()
	res, err := f.Apply(d)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkSets checks the fake's sets; sets not in want are empty.
func checkSets(t *testing.T, f *Fake, want map[string][]string) {
	t.Helper()
	dump := f.Dump()
	if !dump.Exists {
		t.Fatal("no table")
	}
	for _, s := range setSpecs() {
		w := want[s.name]
		if w == nil {
			w = []string{}
		}
		if got := dump.Sets[s.name]; !slices.Equal(got, w) {
			t.Errorf("set %s = %v, want %v", s.name, got, w)
		}
	}
}
