// Package backoff computes exponential retry waits.
package backoff

import "time"

// Exponential is the wait before retry number failures (1 = first retry):
// initial, doubling with each further failure, never more than limit.
func Exponential(initial, limit time.Duration, failures int) time.Duration {
	d := initial
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
