// Package tracecmd is `firewalld trace`: it asks the firewalld of this node,
// over its unix socket, what the NetworkPolicies do with a packet, and
// prints the answer as text or JSON.
package tracecmd

import (
	"context"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/querycmd"
)

// Command returns the trace subcommand for firewalld's daemon.Spec.
func Command() daemon.Command {
	var from, to string
	return querycmd.Command(querycmd.Query[*nodev1.FirewallTraceServiceTraceRequest, *nodev1.FirewallTraceServiceTraceResponse]{
		Name:    "trace",
		Summary: "explain what the NetworkPolicies do with a packet: verdict per direction, policies and rules",
		Flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&from, "from", "", "the packet's source: a pod as namespace/name or an IP address; required")
			fs.StringVar(&to, "to", "", "the destination as <pod namespace/name | IP>:port[/tcp|udp|sctp] ([IPv6]:port); required")
		},
		Request: func() (*nodev1.FirewallTraceServiceTraceRequest, error) { return Request(from, to) },
		Call: func(ctx context.Context, conn grpc.ClientConnInterface, req *nodev1.FirewallTraceServiceTraceRequest) (*nodev1.FirewallTraceServiceTraceResponse, error) {
			return nodev1.NewFirewallTraceServiceClient(conn).Trace(ctx, req)
		},
		Text: WriteText,
	})
}
