package echo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Conn is a connected stream socket: a *net.TCPConn or an *SCTPConn.
type Conn interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
}

// Session is a client connection to a stream echo server (TCP or SCTP) that
// can ask many times: a test keeps one open across a change (a daemon
// restart, a policy update) to see whether established connections survive.
type Session struct {
	conn  Conn
	proto string
	r     *bufio.Reader
}

// NewSession wraps a connected socket; proto ("tcp", "sctp") is only used
// in error messages.
func NewSession(conn Conn, proto string) *Session {
	return &Session{conn: conn, proto: proto, r: bufio.NewReaderSize(conn, maxLine)}
}

// Ask sends a fresh token and returns the server's answer. The context
// bounds the exchange; after an error the session is unusable (close it).
func (s *Session) Ask(ctx context.Context) (Answer, error) {
	stop := bindDeadline(ctx, s.conn.SetDeadline)
	defer stop()
	token := newToken()
	if _, err := io.WriteString(s.conn, token+"\n"); err != nil {
		return Answer{}, s.fail(ctx, "send", err)
	}
	line, err := s.r.ReadSlice('\n')
	if err != nil {
		return Answer{}, s.fail(ctx, "receive", err)
	}
	return decodeAnswer(line, token)
}

// Close closes the connection.
func (s *Session) Close() error { return s.conn.Close() }

func (s *Session) fail(ctx context.Context, what string, err error) error {
	return fmt.Errorf("echo %s: %s: %w", s.proto, what, ctxErr(ctx, err))
}

// AskUDP sends a fresh token over a connected UDP socket and returns the
// answer, sending again every retransmit interval until an answer to this
// token arrives or ctx ends (UDP loses packets, e.g. while a neighbour is
// resolved). Answers to other tokens are skipped. An ICMP port unreachable
// ends it at once with an error wrapping syscall.ECONNREFUSED.
func AskUDP(ctx context.Context, conn *net.UDPConn) (Answer, error) {
	const retransmit = 200 * time.Millisecond
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	token := newToken()
	buf := make([]byte, maxLine)
	for {
		if _, err := conn.Write([]byte(token + "\n")); err != nil {
			return Answer{}, fmt.Errorf("echo udp: send: %w", ctxErr(ctx, err))
		}
		next := time.Now().Add(retransmit)
		if d, ok := ctx.Deadline(); ok && d.Before(next) {
			next = d
		}
		if ctx.Err() != nil {
			return Answer{}, fmt.Errorf("echo udp: no answer: %w", ctx.Err())
		}
		_ = conn.SetReadDeadline(next)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return Answer{}, fmt.Errorf("echo udp: no answer: %w", ctx.Err())
				}
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break // send again
				}
				// ECONNREFUSED here is an ICMP port unreachable: nothing listens
				// (or a policy rejects), which a test wants to see as such.
				return Answer{}, fmt.Errorf("echo udp: receive: %w", err)
			}
			a, err := decodeAnswer(trimLine(buf[:n]), token)
			if errors.Is(err, errStaleAnswer) {
				continue
			}
			return a, err
		}
	}
}

// bindDeadline applies ctx's deadline to a socket and interrupts blocked
// I/O when ctx is cancelled. The returned func undoes both.
func bindDeadline(ctx context.Context, set func(time.Time) error) (stop func()) {
	d, _ := ctx.Deadline() // zero when none: no deadline
	_ = set(d)
	cancel := context.AfterFunc(ctx, func() { _ = set(time.Unix(1, 0)) })
	return func() {
		cancel()
		_ = set(time.Time{})
	}
}

// ctxErr prefers the context's error, which says why I/O was interrupted,
// over the timeout error the interruption produced.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

func trimLine(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
