// Package querycmd is the shape of the subcommands that ask this node's
// daemon one question over its unix socket and print the answer as text or
// JSON: `proxyd trace`, `firewalld trace`, `routerd routes`, `routerd
// peers`. Each names its request's flags, how to build and send the
// request, and how to print the answer for people; the package does the
// rest the same way for all: --output and --timeout, the connection, and
// what each kind of failure exits with.
package querycmd

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/grpcserver"
)

// DefaultTimeout is --timeout's default: the daemon answers from what it
// holds in memory, so a slow answer means it is not answering.
const DefaultTimeout = 3 * time.Second

// Query describes one such subcommand.
type Query[Req, Resp proto.Message] struct {
	// Name is the subcommand's name, for its messages ("trace").
	Name string
	// Summary is its line in the daemon's usage.
	Summary string
	// Flags registers the request's own flags (nil: none).
	Flags func(fs *pflag.FlagSet)
	// Request builds the request from the parsed flags; an error is the
	// user's (exit code daemon.ExitUsage).
	Request func() (Req, error)
	// Call sends it over conn.
	Call func(ctx context.Context, conn grpc.ClientConnInterface, req Req) (Resp, error)
	// Text prints the answer for people (--output text).
	Text func(w io.Writer, resp Resp) error
}

// Command is q as a daemon subcommand.
func Command[Req, Resp proto.Message](q Query[Req, Resp]) daemon.Command {
	var output string
	var timeout time.Duration
	return daemon.Command{
		Summary: q.Summary,
		Flags: func(fs *pflag.FlagSet) {
			if q.Flags != nil {
				q.Flags(fs)
			}
			fs.StringVarP(&output, "output", "o", "text", "output format: text or json")
			fs.DurationVar(&timeout, "timeout", DefaultTimeout, "time to wait for the daemon's answer")
		},
		Run: func(ctx context.Context, inv daemon.Invocation) int {
			return run(ctx, inv, q, output, timeout)
		},
	}
}

func run[Req, Resp proto.Message](ctx context.Context, inv daemon.Invocation, q Query[Req, Resp], output string, timeout time.Duration) int {
	prefix := inv.Daemon + " " + q.Name + ": "
	usage := func(format string, args ...any) int {
		fmt.Fprintf(inv.Stderr, prefix+format+"\n", args...)
		return daemon.ExitUsage
	}
	failure := func(format string, args ...any) int {
		fmt.Fprintf(inv.Stderr, prefix+format+"\n", args...)
		return daemon.ExitFailure
	}
	if output != "text" && output != "json" {
		return usage("--output %q: want text or json", output)
	}
	req, err := q.Request()
	if err != nil {
		return usage("%v", err)
	}
	conn, err := grpcserver.Dial(inv.Socket)
	if err != nil {
		return failure("%v", err)
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := q.Call(ctx, conn, req)
	if err != nil {
		st := status.Convert(err)
		switch st.Code() {
		case codes.InvalidArgument, codes.NotFound:
			// Bad input the daemon found (an unknown pod): the user's.
			return usage("%s", st.Message())
		case codes.Unavailable, codes.DeadlineExceeded:
			return failure("cannot reach %s at %s: %s", inv.Daemon, inv.Socket, st.Message())
		default:
			return failure("%s", st.Message())
		}
	}
	if output == "json" {
		err = WriteJSON(inv.Stdout, resp)
	} else {
		err = q.Text(inv.Stdout, resp)
	}
	if err != nil {
		return failure("%v", err)
	}
	return daemon.ExitOK
}
