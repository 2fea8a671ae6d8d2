package vip

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestRetryDump(t *testing.T) {
	vips := []netip.Addr{netip.MustParseAddr("198.19.0.1")}
	t.Run("interrupted twice, then whole", func(t *testing.T) {
		calls := 0
		partial := []netip.Addr{netip.MustParseAddr("198.19.0.99")}
		got, err := retryDump(5, func() ([]netip.Addr, bool, error) {
			calls++
			if calls < 3 {
				return partial, true, nil // never used: it may be wrong
			}
			return vips, false, nil
		})
		if err != nil || calls != 3 || !slices.Equal(got, vips) {
			t.Fatalf("got %v, %v after %d calls; want %v from the third", got, err, calls, vips)
		}
	})
	t.Run("always interrupted", func(t *testing.T) {
		calls := 0
		_, err := retryDump(4, func() ([]netip.Addr, bool, error) { calls++; return vips, true, nil })
		if calls != 4 || !errors.Is(err, ErrInconsistentDump) || !errors.Is(err, netlink.ErrDumpInterrupted) {
			t.Fatalf("%d calls, %v; want 4 and ErrInconsistentDump (also netlink.ErrDumpInterrupted)", calls, err)
		}
	})
	t.Run("error is not retried", func(t *testing.T) {
		calls := 0
		_, err := retryDump(4, func() ([]netip.Addr, bool, error) { calls++; return nil, false, unix.EPERM })
		if calls != 1 || !errors.Is(err, unix.EPERM) {
			t.Fatalf("%d calls, %v", calls, err)
		}
	})
}
