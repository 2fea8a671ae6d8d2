package policy

import (
	"fmt"
	"strings"
)

// Format renders a matrix as a table, rows from, columns to, one character
// per port in each cell. With got nil it shows want; otherwise it shows got
// with the cells that differ from want marked:
//
//	cell: tcp/80 tcp/81 udp/80 udp/81 sctp/80 sctp/81, one character each
//	+ reachable  . blocked  s skipped  ! reachable, want blocked  ? blocked, want reachable  m misrouted
//	from\to  x/a     x/b     ...  world   node
//	x/a      ++++ss  ....ss  ...
func Format(want, got *Matrix) string {
	shown := want
	if got != nil {
		shown = got
	}
	ports := make([]string, len(want.Ports))
	for i, p := range want.Ports {
		ports[i] = p.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cell: %s, one character each\n", strings.Join(ports, " "))
	b.WriteString("+ reachable  . blocked  s skipped")
	if got != nil {
		b.WriteString("  ! reachable, want blocked  ? blocked, want reachable  m misrouted")
	}
	b.WriteString("\nrow node: the kubelet (the destination's own node); column node: the source's own node\n")

	width := len(want.Ports)
	for _, p := range append(append([]Peer{}, want.From...), want.To...) {
		width = max(width, len(p.String()))
	}
	width += 2
	fmt.Fprintf(&b, "%-*s", width, "from\\to")
	for _, to := range want.To {
		fmt.Fprintf(&b, "%-*s", width, to)
	}
	b.WriteByte('\n')
	for _, from := range want.From {
		var row strings.Builder
		fmt.Fprintf(&row, "%-*s", width, from)
		for _, to := range want.To {
			var cell strings.Builder
			for _, p := range want.Ports {
				c := Cell{from, to, p}
				if !IsCell(from, to) {
					cell.WriteByte(' ')
					continue
				}
				cell.WriteByte(symbol(want.Get(c), shown.Get(c), got != nil))
			}
			fmt.Fprintf(&row, "%-*s", width, cell.String())
		}
		b.WriteString(strings.TrimRight(row.String(), " ") + "\n")
	}
	return b.String()
}

// symbol is a cell's character: shown's outcome, marked where it differs
// from want when compare is set.
func symbol(want, shown Outcome, compare bool) byte {
	if want == Skipped {
		return 's' // not judged, whatever shown says
	}
	if compare && shown != Skipped && want != shown {
		switch shown {
		case Reachable:
			return '!'
		case Blocked:
			return '?'
		case Misrouted:
			return 'm'
		}
		return '#'
	}
	switch shown {
	case Reachable:
		return '+'
	case Blocked:
		return '.'
	case Skipped:
		return 's'
	case Misrouted:
		return 'm'
	}
	return '#'
}
