package nftutil

import (
	"errors"
	"testing"

	"github.com/mdlayher/netlink"
)

func TestWriterKeepsOneSocketUntilItFailsOrIsTooSmall(t *testing.T) {
	w := NewWriter(ConnConfig{TestDial: func([]netlink.Message) ([]netlink.Message, error) { return nil, nil }})
	first, err := w.Conn(1000, 10)
	if err != nil {
		t.Fatal(err)
	}
	w.Done(nil)
	again, err := w.Conn(MinSendBuffer, 10) // exactly what it was sized for
	if err != nil || again != first {
		t.Fatalf("a batch that fits redialed (%v)", err)
	}
	w.Done(nil)
	bigger, err := w.Conn(MinSendBuffer+1, 10)
	if err != nil || bigger == first {
		t.Fatalf("a batch bigger than the buffers kept the socket (%v)", err)
	}
	w.Done(nil)
	more, err := w.Conn(10, 1+RecvBuffer/AckBytes*2)
	if err != nil || more == bigger {
		t.Fatalf("more acknowledgements than the receive buffer holds kept the socket (%v)", err)
	}
	w.Done(errors.New("the kernel refused the batch"))
	after, err := w.Conn(10, 1)
	if err != nil || after == more {
		t.Fatalf("the socket of a failed batch was used again (%v)", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal("a second Close:", err)
	}
}
