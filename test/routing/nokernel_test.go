//go:build !kernel

package routing

import "testing"

// TestRouting is the kernel test (routing_test.go); without the build tag
// it only says how to run it.
func TestRouting(t *testing.T) {
	t.Skip("routerd's kernel test needs the kernel build tag and root: sudo go test -tags kernel -v ./test/routing")
}
