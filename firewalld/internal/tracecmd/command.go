// Package tracecmd is `firewalld trace`: it asks the firewalld of this node,
// over its unix socket, what the NetworkPolicies do with a packet, and
// prints the answer as text or JSON.
package tracecmd

import (
	"context"
	"fmt"
	"time"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/grpcserver"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Command returns the trace subcommand for firewalld's daemon.Spec.
func Command() daemon.Command {
	var from, to, output string
	var timeout time.Duration
	return daemon.Command{
		Summary: "explain what the NetworkPolicies do with a packet: verdict per direction, policies and rules",
		Flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&from, "from", "", "the packet's source: a pod as namespace/name or an IP address; required")
			fs.StringVar(&to, "to", "", "the destination as <pod namespace/name | IP>:port[/tcp|udp|sctp] ([IPv6]:port); required")
			fs.StringVarP(&output, "output", "o", "text", "output format: text or json")
			fs.DurationVar(&timeout, "timeout", 3*time.Second, "time to wait for firewalld")
		},
		Run: func(ctx context.Context, inv daemon.Invocation) int {
			return run(ctx, inv, from, to, output, timeout)
		},
	}
}

func run(ctx context.Context, inv daemon.Invocation, from, to, output string, timeout time.Duration) int {
	usage := func(format string, args ...any) int {
		fmt.Fprintf(inv.Stderr, "%s trace: "+format+"\n", append([]any{inv.Daemon}, args...)...)
		return daemon.ExitUsage
	}
	if output != "text" && output != "json" {
		return usage("--output %q: want text or json", output)
	}
	req, err := Request(from, to)
	if err != nil {
		return usage("%v", err)
	}
	conn, err := grpcserver.Dial(inv.Socket)
	if err != nil {
		fmt.Fprintf(inv.Stderr, "%s trace: %v\n", inv.Daemon, err)
		return daemon.ExitFailure
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := nodev1.NewFirewallTraceServiceClient(conn).Trace(ctx, req)
	if err != nil {
		st := status.Convert(err)
		switch st.Code() {
		case codes.InvalidArgument, codes.NotFound:
			// Bad input the daemon found (an unknown pod): a usage error.
			return usage("%s", st.Message())
		case codes.Unavailable, codes.DeadlineExceeded:
			fmt.Fprintf(inv.Stderr, "%s trace: cannot reach firewalld at %s: %s\n", inv.Daemon, inv.Socket, st.Message())
		default:
			fmt.Fprintf(inv.Stderr, "%s trace: %s\n", inv.Daemon, st.Message())
		}
		return daemon.ExitFailure
	}
	if output == "json" {
		err = WriteJSON(inv.Stdout, resp)
	} else {
		err = WriteText(inv.Stdout, resp)
	}
	if err != nil {
		fmt.Fprintf(inv.Stderr, "%s trace: %v\n", inv.Daemon, err)
		return daemon.ExitFailure
	}
	return daemon.ExitOK
}
