//go:build e2eguest

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/nodenet/nodenet/test/e2e/harness"
	"github.com/nodenet/nodenet/test/netns"
	"github.com/nodenet/nodenet/test/netns/echo"
)

// Traffic that runs through the disruptions of scenario 5: long-lived
// connections that must never break, and connection attempts that must
// never pass.

const (
	// keepInterval is how often a kept connection asks.
	keepInterval = 200 * time.Millisecond
	// keepAskTimeout bounds one ask of a kept connection. TCP retransmits
	// a lost segment within a second or two; only a connection that gets
	// no answer for this long (or is reset) counts as broken.
	keepAskTimeout = 10 * time.Second
)

// keeper is one long-lived TCP connection asking its server every
// keepInterval: each answer must come from the same server (a Service's
// connection stays with the backend IPVS chose).
type keeper struct {
	what   string
	stop   chan struct{}
	done   chan struct{}
	server string

	mu   sync.Mutex
	asks int
	err  error
	at   time.Time // of err
}

// keep opens a connection from ns to addr (waiting until one is answered)
// and keeps asking on it until stopped.
func keep(t *testing.T, what string, ns *netns.NetNS, addr netip.AddrPort) *keeper {
	t.Helper()
	var s *echo.Session
	var first echo.Answer
	err := harness.Poll(t.Context(), convergeTimeout, pollInterval, func() (bool, string) {
		ctx, cancel := context.WithTimeout(t.Context(), attemptTimeout)
		defer cancel()
		var err error
		if s, err = ns.OpenTCP(ctx, addr); err != nil {
			return false, err.Error()
		}
		if first, err = s.Ask(ctx); err != nil {
			_ = s.Close()
			return false, err.Error()
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("%s: %s to %s: %v", what, ns.Name, addr, err)
	}
	k := &keeper{what: what, stop: make(chan struct{}), done: make(chan struct{}), server: first.Name, asks: 1}
	go k.run(s)
	t.Cleanup(k.close)
	t.Logf("%s: %s to %s, kept open (answered by %s)", what, ns.Name, addr, first.Name)
	return k
}

func (k *keeper) run(s *echo.Session) {
	defer close(k.done)
	defer s.Close()
	tick := time.NewTicker(keepInterval)
	defer tick.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), keepAskTimeout)
		a, err := s.Ask(ctx)
		cancel()
		if err == nil && a.Name != k.server {
			err = fmt.Errorf("answered by %s, the connection's server was %s", a.Name, k.server)
		}
		k.mu.Lock()
		if err != nil {
			k.err, k.at = err, time.Now()
		} else {
			k.asks++
		}
		k.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// check fails t when the connection broke.
func (k *keeper) check(t *testing.T, after string) {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err != nil {
		t.Fatalf("%s broke at %s (%s): %v", k.what, k.at.Format("15:04:05.000"), after, k.err)
	}
}

// close stops the asking and returns how many answers came.
func (k *keeper) close() {
	select {
	case <-k.stop:
	default:
		close(k.stop)
	}
	<-k.done
}

func (k *keeper) answers() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.asks
}

// prober tries, one after the other until stopped, connections from ns to
// each of its addresses, all of which policy denies: none may even
// connect.
type prober struct {
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	attempts int
	passed   []string
}

func probe(t *testing.T, ns *netns.NetNS, addrs ...netip.AddrPort) *prober {
	p := &prober{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; ; i++ {
			select {
			case <-p.stop:
				return
			default:
			}
			addr := addrs[i%len(addrs)]
			ctx, cancel := context.WithTimeout(context.Background(), blockedTimeout)
			s, err := ns.OpenTCP(ctx, addr)
			cancel()
			p.mu.Lock()
			p.attempts++
			var ne net.Error
			switch {
			case err == nil:
				p.passed = append(p.passed, fmt.Sprintf("%s to %s connected at %s", ns.Name, addr, time.Now().Format("15:04:05.000")))
				_ = s.Close()
			case !errors.Is(err, context.DeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()):
				// Refused or unreachable is not passing, but it is not
				// the drop firewalld does either: say so.
				p.passed = append(p.passed, fmt.Sprintf("%s to %s failed otherwise than dropped: %v", ns.Name, addr, err))
			}
			p.mu.Unlock()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *prober) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// result stops the prober and returns its attempts and what passed.
func (p *prober) result() (int, []string) {
	p.close()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempts, p.passed
}
