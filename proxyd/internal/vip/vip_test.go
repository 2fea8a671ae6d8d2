package vip

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

func TestCheckAddr(t *testing.T) {
	for _, ok := range []string{"198.19.0.1", "198.18.0.10", "2001:db8:19::1", "fd00::1", "10.96.0.1"} {
		if err := CheckAddr(netip.MustParseAddr(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []netip.Addr{
		{},
		netip.MustParseAddr("fe80::1%eth0"),
		netip.MustParseAddr("::ffff:198.19.0.1"),
		netip.MustParseAddr("0.0.0.0"),
		netip.MustParseAddr("::"),
		netip.MustParseAddr("127.0.0.1"),
		netip.MustParseAddr("::1"),
		netip.MustParseAddr("224.0.0.1"),
		netip.MustParseAddr("ff02::1"),
		netip.MustParseAddr("169.254.1.1"),
		netip.MustParseAddr("fe80::1"),
	} {
		if err := CheckAddr(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestFailedVIPs(t *testing.T) {
	a, b := netip.MustParseAddr("198.19.0.1"), netip.MustParseAddr("2001:db8:19::1")
	one := &VIPError{Op: "add", VIP: a, Err: ErrInvalid}
	if got := FailedVIPs(one); !slices.Equal(got, []netip.Addr{a}) {
		t.Errorf("one: %v", got)
	}
	joined := errors.Join(one, errors.New("other"), fmt.Errorf("wrapped: %w", &VIPError{Op: "add", VIP: b, Err: ErrExists}))
	if got := FailedVIPs(joined); !slices.Equal(got, []netip.Addr{a, b}) {
		t.Errorf("joined: %v", got)
	}
	if got := FailedVIPs(nil); got != nil {
		t.Errorf("nil: %v", got)
	}
	if !errors.Is(joined, ErrExists) || !errors.Is(joined, ErrInvalid) {
		t.Error("errors.Is does not see through the join")
	}
	if got, want := one.Error(), "vip: add local route for 198.19.0.1: invalid VIP"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
