// Package tracecmd is `proxyd trace`: it asks the proxyd of this node, over
// its unix socket, what would happen to a packet, and prints the answer as
// text or JSON.
package tracecmd

import (
	"context"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/querycmd"
)

// Command returns the trace subcommand for proxyd's daemon.Spec.
func Command() daemon.Command {
	var from, to string
	return querycmd.Command(querycmd.Query[*nodev1.ProxyTraceServiceTraceRequest, *nodev1.ProxyTraceServiceTraceResponse]{
		Name:    "trace",
		Summary: "explain what proxyd does with a packet: Service, verdict, endpoints, masquerade",
		Flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&from, "from", "node", `the packet's source: a pod as namespace/name, "node" (this node's own traffic) or an IP address`)
			fs.StringVar(&to, "to", "", "the destination as IP:port[/tcp|udp|sctp] ([IPv6]:port/proto); required")
		},
		Request: func() (*nodev1.ProxyTraceServiceTraceRequest, error) { return Request(from, to) },
		Call: func(ctx context.Context, conn grpc.ClientConnInterface, req *nodev1.ProxyTraceServiceTraceRequest) (*nodev1.ProxyTraceServiceTraceResponse, error) {
			return nodev1.NewProxyTraceServiceClient(conn).Trace(ctx, req)
		},
		Text: WriteText,
	})
}
