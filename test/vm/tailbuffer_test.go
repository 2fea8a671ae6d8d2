package vm

import (
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	b := newTailBuffer(10)
	for _, s := range []string{"0123", "4567\r\n", "89abcdef"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := b.String(); got != "\n89abcdef" {
		t.Errorf("tail = %q, want the last 10 bytes without \\r", got)
	}
	big := strings.Repeat("x", 25) + "end"
	_, _ = b.Write([]byte(big))
	if got := b.String(); got != "xxxxxxxend" {
		t.Errorf("tail after a big write = %q", got)
	}
}
