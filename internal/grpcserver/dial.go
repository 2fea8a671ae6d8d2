package grpcserver

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// Dial returns a client connection to the daemon serving the unix socket at
// path. It connects lazily and reconnects with a backoff from 100ms to 5s: a
// peer restarting (an upgrade of one container) is back within seconds, and
// nobody should wait the default 2 minutes for it.
func Dial(path string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{
		// Local unix socket, protected by its 0600 mode.
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: time.Second,
		}),
	}, opts...)
	return grpc.NewClient("unix://"+path, opts...)
}
