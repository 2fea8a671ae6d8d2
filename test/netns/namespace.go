package netns

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sync"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/nodenet/nodenet/test/netns/echo"
)

// NetNS is a network namespace the topology created: the world, a node or a
// pod. It is kept alive by a bind mount of its nsfs file at Path (so that
// `nsenter --net=<Path>` reaches it for debugging, and a crashed run's
// namespaces can be found and removed), and owns a netlink handle and an
// echo server living inside it.
type NetNS struct {
	// Name is the object's name: "world", "node0", or the pod's name. Echo
	// servers in the namespace answer as Name.
	Name string
	// Path is the bind mount that pins the namespace.
	Path string

	handle vnetns.NsHandle
	nl     *netlink.Handle

	mu        sync.Mutex
	server    *echo.Server // created by the first Serve*
	destroyed bool
}

// newNetNS creates a network namespace pinned at path; with loUp, lo is
// brought up (a pod's lo is left to the loopback CNI plugin, as a runtime
// does).
func newNetNS(name, path string, loUp bool) (_ *NetNS, err error) {
	var h vnetns.NsHandle
	// unshare(CLONE_NEWNET) moves only the calling thread; onFreshThread
	// throws that thread away afterwards, so no goroutine of this process
	// ever runs in the new namespace by accident.
	if err := onFreshThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
		}
		var err error
		h, err = vnetns.Get()
		return err
	}); err != nil {
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	ns := &NetNS{Name: name, Path: path, handle: h}
	defer func() {
		if err != nil {
			_ = ns.destroy()
		}
	}()
	if err := pin(h, path); err != nil {
		ns.Path = "" // nothing to unmount
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	// Netlink sockets belong to the namespace they are created in: create the
	// handle inside, then use it from any goroutine.
	if err := ns.Do(func() error {
		var err error
		ns.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE, unix.NETLINK_NETFILTER)
		return err
	}); err != nil {
		return nil, fmt.Errorf("netns %s: netlink handle: %w", name, err)
	}
	if !loUp {
		return ns, nil
	}
	lo, err := ns.nl.LinkByName("lo")
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	if err := ns.nl.LinkSetUp(lo); err != nil {
		return nil, fmt.Errorf("netns %s: lo up: %w", name, err)
	}
	return ns, nil
}

// pin bind-mounts the namespace h refers to onto a new file at path.
func pin(h vnetns.NsHandle, path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	_ = f.Close()
	src := fmt.Sprintf("/proc/self/fd/%d", int(h))
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("bind mount %s: %w", path, err)
	}
	return nil
}

// unpin undoes pin. MNT_DETACH never fails on a busy mount; the namespace
// goes when its last user (socket, process, open fd) does.
func unpin(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		err = nil // not mounted (a crash between create and mount) or gone
	}
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// Do runs fn on an OS thread that has joined the namespace, and returns its
// error. Sockets fn creates stay in the namespace and may be used from any
// goroutine afterwards; goroutines fn starts do not run in the namespace. A
// panic in fn is re-raised in the caller.
func (n *NetNS) Do(fn func() error) error {
	return onFreshThread(func() error {
		if err := unix.Setns(int(n.handle), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("setns %s: %w", n.Name, err)
		}
		return fn()
	})
}

// onFreshThread runs fn in a new goroutine locked to its OS thread and never
// unlocks it: when the goroutine ends locked, the Go runtime ends the thread
// instead of reusing it, so namespace changes made by fn cannot leak into
// other goroutines, even if restoring them would have failed.
func onFreshThread(fn func() error) error {
	type outcome struct {
		err      error
		panicked bool
		panicVal any
	}
	done := make(chan outcome, 1)
	go func() {
		runtime.LockOSThread()
		var o outcome
		defer func() {
			if r := recover(); r != nil {
				o = outcome{panicked: true, panicVal: r}
			}
			done <- o
		}()
		o.err = fn()
	}()
	o := <-done
	if o.panicked {
		panic(o.panicVal)
	}
	return o.err
}

// Start starts cmd (see os/exec) inside the namespace: a daemon that plays
// a node's host-network process, say. The child process is in the namespace
// as a whole (its threads, its children); the caller waits for it and must
// end it before the topology goes, or it keeps the namespace alive.
func (n *NetNS) Start(cmd *exec.Cmd) error {
	return n.Do(cmd.Start)
}

// Fd is a file descriptor referring to the namespace, for libraries that
// take one (nftables.WithNetNSFd, netlink.NewHandleAt). It is valid until
// the namespace is torn down; do not close it.
func (n *NetNS) Fd() int { return int(n.handle) }

// Netlink is a netlink handle (route and netfilter families) inside the
// namespace, usable from any goroutine.
func (n *NetNS) Netlink() *netlink.Handle { return n.nl }

// AddRoute adds a static route (protocol "static", so it is never mistaken
// for one routerd owns) to dst via gateway via.
func (n *NetNS) AddRoute(dst netip.Prefix, via netip.Addr) error {
	r := &netlink.Route{Dst: prefixIPNet(dst), Gw: via.AsSlice(), Protocol: unix.RTPROT_STATIC}
	if err := n.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("%s: route %s via %s: %w", n.Name, dst, via, err)
	}
	return nil
}

// DelRoute deletes the route to dst.
func (n *NetNS) DelRoute(dst netip.Prefix) error {
	if err := n.nl.RouteDel(&netlink.Route{Dst: prefixIPNet(dst)}); err != nil {
		return fmt.Errorf("%s: delete route %s: %w", n.Name, dst, err)
	}
	return nil
}

// SetSysctl writes /proc/sys/<key> (e.g. "net/ipv4/ip_forward") from inside
// the namespace: the net.* sysctls are per namespace and resolved against
// the namespace of the thread that opens them.
func (n *NetNS) SetSysctl(key, value string) error {
	return n.Do(func() error {
		return os.WriteFile("/proc/sys/"+key, []byte(value), 0o644)
	})
}

// destroy stops the echo server, closes the handles and unpins the
// namespace; the kernel frees it once nothing else refers to it.
// It is idempotent.
func (n *NetNS) destroy() error {
	var errs []error
	n.mu.Lock()
	if n.destroyed {
		n.mu.Unlock()
		return nil
	}
	n.destroyed = true
	srv := n.server
	n.server = nil
	n.mu.Unlock()
	if srv != nil {
		errs = append(errs, srv.Close())
	}
	if n.nl != nil {
		n.nl.Close()
		n.nl = nil
	}
	if n.handle.IsOpen() {
		errs = append(errs, n.handle.Close())
	}
	if n.Path != "" {
		errs = append(errs, unpin(n.Path))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("netns %s: %w", n.Name, err)
	}
	return nil
}
