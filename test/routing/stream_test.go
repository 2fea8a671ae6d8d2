//go:build kernel

package routing

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/nodenet/nodenet/internal/testutil/netnstest"
	"github.com/nodenet/nodenet/test/netns"
	"github.com/nodenet/nodenet/test/netns/echo"
)

// streamInterval is how often the long-lived connection exchanges a
// message.
const streamInterval = 5 * time.Millisecond

// stream is a long-lived TCP connection from one pod to the echo server
// of another, asking every streamInterval, each answer checked (the
// server's name, the client pod's own address as source). It stops at the
// first failure.
type stream struct {
	from, to *netns.Pod
	sess     *echo.Session
	stopCh   chan struct{}
	done     chan struct{}

	mu        sync.Mutex
	exchanges int64
	maxGap    time.Duration // longest time between two answers
	err       error
}

// openStream connects from to to's echo server and starts exchanging.
func openStream(t *testing.T, from, to *netns.Pod) *stream {
	t.Helper()
	ctx, cancel := stepContext(t, dialTimeout)
	defer cancel()
	sess, err := from.OpenTCP(ctx, netip.AddrPortFrom(to.IP, echoPort))
	if err != nil {
		t.Fatalf("long-lived connection: %v", err)
	}
	s := &stream{from: from, to: to, sess: sess, stopCh: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { s.stop() })
	go s.loop()
	return s
}

func (s *stream) loop() {
	defer close(s.done)
	tick := time.NewTicker(streamInterval)
	defer tick.Stop()
	last := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		a, err := s.sess.Ask(ctx)
		cancel()
		if err == nil && (a.Name != s.to.Name || a.Source.Addr() != s.from.IP) {
			err = fmt.Errorf("unexpected answer: %s (want %s answering, source %s)", a, s.to.Name, s.from.IP)
		}
		now := time.Now()
		s.mu.Lock()
		if err != nil {
			s.err = fmt.Errorf("after %d exchanges: %w", s.exchanges, err)
			s.mu.Unlock()
			return
		}
		s.exchanges++
		s.maxGap = max(s.maxGap, now.Sub(last))
		s.mu.Unlock()
		last = now
		select {
		case <-s.stopCh:
			return
		case <-tick.C:
		}
	}
}

// state is the number of exchanges so far, the longest gap and the
// failure, if any.
func (s *stream) state() (int64, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.exchanges, s.maxGap, s.err
}

// waitMore waits until n more exchanges have succeeded: a stretch of time
// the connection covered. It fails t when the connection broke.
func (s *stream) waitMore(t *testing.T, n int64, when string) {
	t.Helper()
	mark, _, _ := s.state()
	netnstest.WaitFor(t, convergeTimeout, streamInterval, fmt.Sprintf("%d more exchanges on the long-lived connection %s", n, when), func() (bool, string) {
		got, _, err := s.state()
		if err != nil {
			t.Fatalf("the long-lived connection %s → %s broke %s: %v", s.from.Name, s.to.Name, when, err)
		}
		return got >= mark+n, fmt.Sprintf("%d exchanges", got-mark)
	})
}

// stop ends the exchanges and closes the connection; it returns the
// final state.
func (s *stream) stop() (int64, time.Duration, error) {
	select {
	case <-s.stopCh:
	default:
		close(s.stopCh)
	}
	<-s.done
	_ = s.sess.Close()
	return s.state()
}
