package netns

import (
	"context"
	"net"
	"net/http"
	"time"
)

// HTTPClient is an HTTP client whose connections are made inside n (a
// daemon's /metrics or /debug/pprof on the node's loopback), one per
// request.
func (n *NetNS) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				var c net.Conn
				err := n.Do(func() error {
					var d net.Dialer
					var err error
					// tcp4 and a literal address: one attempt, on this
					// thread, so the socket is made in n.
					c, err = d.DialContext(ctx, "tcp4", addr)
					return err
				})
				return c, err
			},
		},
	}
}
