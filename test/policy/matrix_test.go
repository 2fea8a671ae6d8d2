package policy

import (
	"strings"
	"testing"
)

// The expectation rules: both ends must allow, isolation and allows do not
// depend on the order of the calls, and the exceptions (self, own node)
// hold whatever the calls.
func TestExpectation(t *testing.T) {
	m := DefaultModel()
	xa, xb, ya := Pod("x", "a"), Pod("x", "b"), Pod("y", "a")
	e1 := NewExpectation(m, ServedPorts()).
		DenyIngressTo(PodsIn("x")).
		AllowIngressTo(Pods(xa), PodsIn("y"), TCP(80)).
		DenyEgressFrom(Pods(ya)).
		AllowEgressFrom(Pods(ya), AllPods())
	e2 := NewExpectation(m, ServedPorts()).
		AllowEgressFrom(Pods(ya), AllPods()).
		AllowIngressTo(Pods(xa), PodsIn("y"), TCP(80)).
		DenyEgressFrom(Pods(ya)).
		DenyIngressTo(PodsIn("x"))
	if d := Diff(e1.Matrix(), e2.Matrix()); len(d) > 0 {
		t.Fatalf("the order of the calls changed the matrix:\n%s", FormatMismatches(d, 0))
	}
	for _, c := range []struct {
		cell Cell
		want bool
	}{
		{Cell{ya, xa, TCP(80)}, true},  // allowed at both ends
		{Cell{ya, xa, TCP(81)}, false}, // not that port
		{Cell{Pod("z", "a"), xa, TCP(80)}, false},
		{Cell{ya, World(), TCP(80)}, false},  // y/a's egress: pods only
		{Cell{xb, ya, UDP(80)}, true},        // y/a's ingress is not isolated
		{Cell{xa, xa, TCP(81)}, true},        // itself
		{Cell{OwnNode(), xb, TCP(80)}, true}, // the kubelet
		{Cell{ya, OwnNode(), UDP(81)}, true}, // its own node
		{Cell{World(), xb, TCP(80)}, false},  // x is isolated
		{Cell{World(), Pod("z", "c"), TCP(80)}, true},
	} {
		if got := e1.Reachable(c.cell); got != c.want {
			t.Errorf("%s: reachable = %v, want %v", c.cell, got, c.want)
		}
	}
}

// A matrix covers pod pairs and pods with the world and their node, not the
// world with the nodes.
func TestMatrixCells(t *testing.T) {
	m := NewMatrix(DefaultModel(), []Port{TCP(80)})
	// 9×9 pod pairs, world→pods, node→pods, pods→world, pods→node.
	if got, want := len(m.Cells()), 81+4*9; got != want {
		t.Fatalf("%d cells, want %d", got, want)
	}
	for _, c := range m.Cells() {
		if !c.From.IsPod() && !c.To.IsPod() {
			t.Fatalf("cell %s has no pod", c)
		}
	}
}

// Skipped cells neither pass nor fail; the others must agree; the table
// marks what differs.
func TestDiffAndFormat(t *testing.T) {
	model := DefaultModel()
	want := NewExpectation(model, ServedPorts()).DenyIngressTo(Pods(Pod("x", "a"))).Matrix()
	want.SkipPorts("no SCTP", SCTP(80), SCTP(81))
	got := NewExpectation(model, ServedPorts()).Matrix()
	got.SkipPorts("no SCTP", SCTP(80), SCTP(81))
	leak := Cell{Pod("y", "b"), Pod("x", "a"), TCP(81)}
	hole := Cell{Pod("y", "b"), Pod("z", "c"), UDP(80)}
	for _, c := range want.Cells() {
		if want.Get(c) == Blocked && c != leak {
			got.Set(c, Blocked, "timeout")
		}
	}
	got.Set(hole, Blocked, "i/o timeout")
	// A skipped cell that would differ is not a mismatch.
	got.Set(Cell{Pod("y", "b"), Pod("x", "a"), SCTP(80)}, Reachable, "")

	d := Diff(want, got)
	if len(d) != 2 || d[0].Cell != leak || d[1].Cell != hole {
		t.Fatalf("diff:\n%s", FormatMismatches(d, 0))
	}
	if !strings.Contains(d[1].String(), "i/o timeout") {
		t.Errorf("the mismatch does not say why: %s", d[1])
	}
	table := Format(want, got)
	rows := map[string]string{}
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			rows[f[0]] = line
		}
	}
	// y/b's row: x/a is the first column (tcp/81 leaked), z/c the ninth
	// (udp/80 blocked).
	f := strings.Fields(rows["y/b"])
	if f[1] != ".!..ss" || f[9] != "++?+ss" {
		t.Errorf("y/b's row %q: want x/a \".!..ss\" and z/c \"++?+ss\"\n%s", rows["y/b"], table)
	}
	if f := strings.Fields(rows["world"]); len(f) != 10 {
		t.Errorf("the world's row has %d fields, want 10 (no cell to the world or a node)\n%s", len(f), table)
	}
}
