//go:build kernel

package policy

import (
	"fmt"
	"testing"
	"time"
)

// converge polls the whole matrix until it equals want, and fails t with
// the last matrix observed, its mismatches marked, when convergeTimeout
// passes first. Each round first flushes the nodes' conntrack.
//
// With enforcement on and marks given (taken before the change), a
// matching round counts only once every firewalld has synced since the
// marks with nothing pending, and the round after that must match too: a
// change half applied (one policy of a step's two, say) can produce the
// expected matrix by accident, but cannot survive firewalld settling.
func (f *fixture) converge(t *testing.T, what string, want *Matrix, marks map[int]uint64, showTable bool) {
	t.Helper()
	begin := time.Now()
	deadline := begin.Add(convergeTimeout)
	ctx, cancel := stepContext(t, convergeTimeout+2*probeTimeout)
	defer cancel()
	tick := time.NewTicker(roundInterval)
	defer tick.Stop()
	checkSettled := f.gate == "" && len(marks) > 0
	var (
		got       *Matrix
		diff      []Mismatch
		waitingOn string
	)
	for round := 1; ; round++ {
		if err := f.flushConntrack(); err != nil {
			t.Fatal(err)
		}
		got = f.observe(ctx, want)
		diff = Diff(want, got)
		if len(diff) == 0 {
			settled, why, err := true, "", error(nil)
			if checkSettled {
				settled, why, err = f.settled(ctx, marks)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
			}
			if settled {
				// Once settled, one confirming round (unless this one
				// already started settled).
				if !checkSettled || waitingOn == "settled" {
					f.logConverged(t, what, want, got, round, time.Since(begin), showTable)
					return
				}
				waitingOn = "settled"
			} else {
				waitingOn = why
			}
		} else if waitingOn == "settled" {
			waitingOn = "" // matched, then not: keep polling
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, ctx.Err())
		}
	}
	msg := fmt.Sprintf("%s: the matrix did not converge within %v", what, convergeTimeout)
	if len(diff) == 0 {
		msg = fmt.Sprintf("%s: the matrix matched but firewalld did not settle within %v: %s", what, convergeTimeout, waitingOn)
	}
	t.Fatalf("%s; %d cells differ:\n%s%s%s", msg, len(diff), Format(want, got), FormatMismatches(diff, maxMismatchesShown), f.describeFirewalld(ctx))
}

// maxMismatchesShown bounds the mismatches a failure lists below its table.
const maxMismatchesShown = 24

func (f *fixture) logConverged(t *testing.T, what string, want, got *Matrix, rounds int, took time.Duration, showTable bool) {
	t.Helper()
	skipped := ""
	if n := got.Count(Skipped); n > 0 {
		skipped = fmt.Sprintf(", %d skipped (%v)", n, f.noSCTP)
	}
	table := ""
	if showTable {
		table = "\n" + Format(want, nil)
	}
	t.Logf("%s: converged in %v, %d round(s): %d cells reachable, %d blocked%s%s",
		what, took.Round(time.Millisecond), rounds, got.Count(Reachable), got.Count(Blocked), skipped, table)
}
