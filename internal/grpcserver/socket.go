// Package grpcserver serves a daemon's gRPC services on its unix socket: one
// constructor with the logging and recovery interceptors, the socket with an
// exclusive lock, and the dialer peers and `status` use.
package grpcserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Socket is a daemon's listening unix socket together with the lock that
// makes it the only server of that path.
type Socket struct {
	Path     string
	Listener net.Listener
	lock     *os.File
}

// Listen takes the lock "<path>.lock", replaces a stale socket file left by a
// crashed process, and listens on path with mode 0600.
//
// The lock (flock, released by the kernel when its holder dies, even on
// SIGKILL) tells a live server from a stale file without racing a second
// starter: dialling the old socket to see whether someone answers would let
// two starters both find it dead and remove each other's socket.
func Listen(path string) (*Socket, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is already served by another process (lock %s.lock is held)", path, path)
		}
		return nil, fmt.Errorf("lock %s.lock: %w", path, err)
	}
	// We hold the lock: whatever socket file is there was left by a process
	// that is gone.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = lock.Close()
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	// The socket is created with the process umask (0022 in containers, so
	// nobody else can connect in the meantime: connecting needs write
	// permission); tighten it before serving anything.
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		_ = lock.Close()
		return nil, err
	}
	return &Socket{Path: path, Listener: l, lock: lock}, nil
}

// Close closes the listener (which removes the socket file) and releases the
// lock. The lock file itself stays: removing it would let a process that
// opened it just before take a lock on an unlinked file.
func (s *Socket) Close() error {
	err := s.Listener.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return errors.Join(err, s.lock.Close())
}
