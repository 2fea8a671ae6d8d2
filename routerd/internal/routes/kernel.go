package routes

import (
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/nodenet/nodenet/routerd/internal/model"
)

// Kernel is the netlink adapter. Its sockets are opened on first use and
// kept (closing a netlink socket after writes can wait for the kernel for
// milliseconds); Close releases them. Its methods may be called from any
// goroutine.
type Kernel struct {
	mu sync.Mutex
	e  engine
	b  *nlBackend
}

// New returns the adapter for cfg; it touches nothing until called.
func New(cfg Config) *Kernel {
	b := &nlBackend{cfg: cfg.withDefaults()}
	return &Kernel{e: engine{b: b, cache: newState()}, b: b}
}

// Apply is part of Interface.
func (k *Kernel) Apply(d Desired) (Result, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.e.apply(d)
}

// Invalidate is part of Interface.
func (k *Kernel) Invalidate() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.e.invalidate()
}

// Installed is part of Interface.
func (k *Kernel) Installed() ([]model.Route, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.e.installed()
}

// Delete is part of Interface.
func (k *Kernel) Delete() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.e.deleteAll()
}

// Close releases the sockets; the next call opens them again.
func (k *Kernel) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.b.close()
}

// nlBackend is the kernel through netlink: dumps and link requests through
// vishvananda/netlink, route writes through a batch socket of its own.
type nlBackend struct {
	cfg  Config
	h    *netlink.Handle
	conn *rtconn
	bt   *batcher
}

func (b *nlBackend) handle() (*netlink.Handle, error) {
	if b.h != nil {
		return b.h, nil
	}
	var err error
	if b.cfg.NetNS != 0 {
		b.h, err = netlink.NewHandleAt(netns.NsHandle(b.cfg.NetNS))
	} else {
		b.h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, err
	}
	if err := b.h.SetSocketTimeout(recvTimeout); err != nil {
		b.h.Close()
		b.h = nil
		return nil, err
	}
	return b.h, nil
}

func (b *nlBackend) batcher() (*batcher, error) {
	if b.bt != nil {
		return b.bt, nil
	}
	c, err := dialRoute(b.cfg.NetNS)
	if err != nil {
		return nil, err
	}
	b.conn = c
	b.bt = newBatcher(c, b.cfg, c.maxBytes, c.maxMsgs)
	return b.bt, nil
}

func (b *nlBackend) read() (state, error) {
	h, err := b.handle()
	if err != nil {
		return newState(), err
	}
	return readKernel(h, b.cfg.Protocol, b.cfg.Table)
}

func (b *nlBackend) writeRoutes(ops []routeOp) ([]error, int, error) {
	bt, err := b.batcher()
	if err != nil {
		errs := make([]error, len(ops))
		fillNoAck(errs)
		return errs, 0, err
	}
	errs, msgs, err := bt.run(ops)
	if err != nil {
		// A socket that lost acknowledgements may still deliver them:
		// start the next batch on a fresh one.
		_ = b.closeConn()
	}
	return errs, msgs, err
}

func (b *nlBackend) closeConn() error {
	if b.conn == nil {
		return nil
	}
	err := b.conn.close()
	b.conn, b.bt = nil, nil
	return err
}

func (b *nlBackend) close() error {
	err := b.closeConn()
	if b.h != nil {
		b.h.Close()
		b.h = nil
	}
	return err
}
