package nftutil

import (
	"github.com/google/nftables"
)

// Writer keeps one netlink socket for a daemon's transactions instead of
// a socket per transaction. Closing an nftables socket waits for the
// kernel to release what the socket's transactions deleted (measured on
// 6.18: 10–14 ms after a transaction that deleted one set element, while
// the transaction itself was committed in 0.1 ms), so a socket per
// transaction made every change that removes something cost a grace
// period. The socket is replaced when a batch needs bigger buffers, and
// after any failure (a failed batch may leave unread acknowledgements or
// queued messages behind); a replaced socket is closed in the background.
//
// A Writer is used by one goroutine at a time.
type Writer struct {
	cfg  ConnConfig
	conn *nftables.Conn
	// send and messages are what the socket's buffers were sized for.
	send, messages int
}

// NewWriter returns a Writer dialing as cfg says (Lasting, SendBuffer and
// Messages are the Writer's to choose). Nothing is dialed before Conn.
func NewWriter(cfg ConnConfig) *Writer {
	return &Writer{cfg: cfg}
}

// Conn returns the connection for a batch of the given bytes and
// messages; the caller queues the batch, flushes, and then calls Done.
func (w *Writer) Conn(bytes, messages int) (*nftables.Conn, error) {
	if w.conn != nil && bytes <= w.send && messages <= w.messages {
		return w.conn, nil
	}
	w.discard()
	// Room for growth, so that a table growing by a few elements does
	// not redial every time.
	send, msgs := max(2*bytes, MinSendBuffer), max(2*messages, RecvBuffer/AckBytes)
	cfg := w.cfg
	cfg.SendBuffer, cfg.Messages, cfg.Lasting = send, msgs, true
	c, err := Dial(cfg)
	if err != nil {
		return nil, err
	}
	w.conn, w.send, w.messages = c, send, msgs
	return c, nil
}

// Done ends the use of the connection Conn returned: after an error the
// socket is not used again.
func (w *Writer) Done(err error) {
	if err != nil {
		w.discard()
	}
}

// Close closes the socket, waiting for the kernel.
func (w *Writer) Close() error {
	c := w.conn
	w.conn = nil
	if c == nil {
		return nil
	}
	return c.CloseLasting()
}

func (w *Writer) discard() {
	c := w.conn
	w.conn = nil
	if c != nil {
		// Nobody waits for it: the close only waits for the kernel to
		// free what earlier transactions deleted.
		go func() { _ = c.CloseLasting() }()
	}
}
