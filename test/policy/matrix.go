package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Outcome is what a probe found, or what a case expects.
type Outcome uint8

// The outcomes.
const (
	// Unknown: not set (not probed yet).
	Unknown Outcome = iota
	// Reachable: the destination answered.
	Reachable
	// Blocked: no answer (a dropped connection times out), or a refusal.
	Blocked
	// Skipped: not probed, e.g. SCTP on a kernel without it. Never a pass.
	Skipped
	// Misrouted: someone other than the destination answered; a broken
	// test network, never what a case expects.
	Misrouted
)

func (o Outcome) String() string {
	switch o {
	case Reachable:
		return "reachable"
	case Blocked:
		return "blocked"
	case Skipped:
		return "skipped"
	case Misrouted:
		return "misrouted"
	}
	return "unknown"
}

// Matrix holds an outcome per cell: sources × destinations × ports.
type Matrix struct {
	From, To []Peer
	Ports    []Port
	outcomes map[Cell]Outcome
	notes    map[Cell]string
}

// NewMatrix is an empty matrix over m's sources and destinations.
func NewMatrix(m Model, ports []Port) *Matrix {
	return &Matrix{
		From: m.Sources(), To: m.Destinations(), Ports: slices.Clone(ports),
		outcomes: map[Cell]Outcome{}, notes: map[Cell]string{},
	}
}

// Cells are the matrix's cells (see IsCell), row by row, port by port.
func (m *Matrix) Cells() []Cell {
	var cs []Cell
	for _, from := range m.From {
		for _, to := range m.To {
			if !IsCell(from, to) {
				continue
			}
			for _, p := range m.Ports {
				cs = append(cs, Cell{from, to, p})
			}
		}
	}
	return cs
}

// Set records a cell's outcome and a note saying why (a probe's error, who
// answered), shown for mismatches.
func (m *Matrix) Set(c Cell, o Outcome, note string) {
	m.outcomes[c] = o
	if note != "" {
		m.notes[c] = note
	} else {
		delete(m.notes, c)
	}
}

// Get is a cell's outcome.
func (m *Matrix) Get(c Cell) Outcome { return m.outcomes[c] }

// Note is what was recorded with a cell's outcome.
func (m *Matrix) Note(c Cell) string { return m.notes[c] }

// SkipPorts marks every cell of ports as skipped, saying why.
func (m *Matrix) SkipPorts(why string, ports ...Port) {
	for _, c := range m.Cells() {
		if slices.Contains(ports, c.Port) {
			m.Set(c, Skipped, why)
		}
	}
}

// Count is how many cells have outcome o.
func (m *Matrix) Count(o Outcome) int {
	n := 0
	for _, c := range m.Cells() {
		if m.outcomes[c] == o {
			n++
		}
	}
	return n
}

// Mismatch is a cell whose observed outcome is not the expected one.
type Mismatch struct {
	Cell      Cell
	Want, Got Outcome
	Note      string
}

func (d Mismatch) String() string {
	s := d.Cell.String() + ": " + d.Got.String() + ", want " + d.Want.String()
	if d.Note != "" {
		s += " (" + d.Note + ")"
	}
	return s
}

// Diff lists the cells where got differs from want. Cells skipped in either
// are left out: they were not probed, so they neither pass nor fail (the
// caller reports how many were skipped).
func Diff(want, got *Matrix) []Mismatch {
	var ds []Mismatch
	for _, c := range want.Cells() {
		w, g := want.Get(c), got.Get(c)
		if w == Skipped || g == Skipped || w == g {
			continue
		}
		ds = append(ds, Mismatch{Cell: c, Want: w, Got: g, Note: got.Note(c)})
	}
	return ds
}

// FormatMismatches lists mismatches one per line, at most limit of them
// (all when limit is 0 or less).
func FormatMismatches(ds []Mismatch, limit int) string {
	var b strings.Builder
	for i, d := range ds {
		if limit > 0 && i == limit {
			fmt.Fprintf(&b, "  ... and %d more\n", len(ds)-limit)
			break
		}
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}
