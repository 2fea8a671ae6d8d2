package netns

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// relayDialTimeout bounds one connection attempt to the relay's target.
const relayDialTimeout = 30 * time.Second

// Relay forwards TCP connections accepted inside a namespace to an address
// that only the test process's own namespace reaches: how a daemon run in a
// node's namespace (NetNS.Start) reaches the control plane, which listens
// on the loopback of the host (or of the VM). The listening socket is made
// inside the namespace; the outgoing connections are made from ordinary
// goroutines, so in the caller's namespace. A relay changes nothing in
// either namespace but its sockets.
type Relay struct {
	ln     net.Listener
	target string
	logf   func(format string, args ...any)

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// StartRelay listens on listen (host:port, e.g. "127.0.0.1:6443") inside n
// and forwards every accepted connection to target, dialled from the
// caller's namespace. A daemon in n whose kubeconfig names
// https://127.0.0.1:<port> then reaches an apiserver listening on
// 127.0.0.1:<port> outside n, and the apiserver's certificate (which names
// 127.0.0.1) still verifies. logf, when not nil, receives failed dials.
// Close stops it.
func (n *NetNS) StartRelay(listen, target string, logf func(format string, args ...any)) (*Relay, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var ln net.Listener
	if err := n.Do(func() (err error) {
		ln, err = net.Listen("tcp4", listen)
		return err
	}); err != nil {
		return nil, fmt.Errorf("%s: relay on %s: %w", n.Name, listen, err)
	}
	r := &Relay{ln: ln, target: target, logf: logf, conns: map[net.Conn]struct{}{}}
	r.wg.Go(r.accept)
	return r, nil
}

// Addr is the address the relay listens on inside the namespace.
func (r *Relay) Addr() net.Addr { return r.ln.Addr() }

// Close stops accepting, closes every relayed connection and waits for the
// relay's goroutines.
func (r *Relay) Close() error {
	err := r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

func (r *Relay) accept() {
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return // closed
		}
		r.wg.Go(func() { r.relay(in) })
	}
}

// relay dials the target for one accepted connection and copies both ways
// until both sides have closed.
func (r *Relay) relay(in net.Conn) {
	// Dialled from this goroutine: the caller's namespace, not the relay's.
	out, err := net.DialTimeout("tcp4", r.target, relayDialTimeout)
	if err != nil {
		r.logf("relay to %s: %v", r.target, err)
		_ = in.Close()
		return
	}
	if !r.track(in, out) {
		_ = in.Close()
		_ = out.Close()
		return
	}
	var pipes sync.WaitGroup
	for _, p := range [][2]net.Conn{{in, out}, {out, in}} {
		pipes.Go(func() {
			_, _ = io.Copy(p[0], p[1])
			// Half-close: the other direction may still carry an answer.
			if tc, ok := p[0].(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		})
	}
	pipes.Wait()
	_ = in.Close()
	_ = out.Close()
	r.mu.Lock()
	delete(r.conns, in)
	delete(r.conns, out)
	r.mu.Unlock()
}

// track registers a relayed pair so Close can end it; false when the relay
// is already closed.
func (r *Relay) track(conns ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	for _, c := range conns {
		r.conns[c] = struct{}{}
	}
	return true
}
