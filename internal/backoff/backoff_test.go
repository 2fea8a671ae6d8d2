package backoff

import (
	"testing"
	"time"
)

func TestExponential(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		0: 100 * time.Millisecond, 1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond,
		10: 51200 * time.Millisecond, 11: time.Minute, 1000: time.Minute,
	} {
		if got := Exponential(100*time.Millisecond, time.Minute, failures); got != want {
			t.Errorf("Exponential(%d) = %v, want %v", failures, got, want)
		}
	}
}
