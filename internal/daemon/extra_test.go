package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/grpcserver"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
)

// tracing is a controller that serves a gRPC service of its own, as proxyd
// serves its trace.
type tracing struct {
	idle
	nodev1.UnimplementedProxyTraceServiceServer
}

func (t *tracing) RegisterServices(s grpc.ServiceRegistrar) {
	nodev1.RegisterProxyTraceServiceServer(s, t)
}

func (t *tracing) Trace(_ context.Context, req *nodev1.ProxyTraceServiceTraceRequest) (*nodev1.ProxyTraceServiceTraceResponse, error) {
	return &nodev1.ProxyTraceServiceTraceResponse{NodeName: "node-1", Destination: req.GetToIp()}, nil
}

var _ GRPCServer = (*tracing)(nil)

// traceCommand is a subcommand that asks the daemon's socket, as
// `proxyd trace` does.
func traceCommand() Command {
	var to string
	return Command{
		Summary: "ask the daemon's own service",
		Flags:   func(fs *pflag.FlagSet) { fs.StringVar(&to, "to", "", "destination") },
		Run: func(ctx context.Context, inv Invocation) int {
			if to == "" {
				fmt.Fprintln(inv.Stderr, "--to is required")
				return ExitUsage
			}
			conn, err := grpcserver.Dial(inv.Socket)
			if err != nil {
				fmt.Fprintln(inv.Stderr, err)
				return ExitFailure
			}
			defer func() { _ = conn.Close() }()
			resp, err := nodev1.NewProxyTraceServiceClient(conn).Trace(ctx, &nodev1.ProxyTraceServiceTraceRequest{ToIp: to})
			if err != nil {
				fmt.Fprintln(inv.Stderr, err)
				return ExitFailure
			}
			fmt.Fprintf(inv.Stdout, "%s %s %s\n", inv.Daemon, resp.GetNodeName(), resp.GetDestination())
			return ExitOK
		},
	}
}

func TestControllerServicesAndExtraCommands(t *testing.T) {
	runDir := shortRunDir(t)
	cfg := testConfig("proxyd", runDir)
	cfg.Peers = nil
	spec := Spec{Name: "proxyd", NewController: func(Deps) (Controller, error) { return &tracing{}, nil },
		Commands: map[string]Command{"trace": traceCommand()}}
	startDaemon(t, spec, cfg)

	res := runMain(spec, "trace", "--run-dir", runDir, "--to", "198.19.0.10")
	if res.code != ExitOK || res.stdout != "proxyd node-1 198.19.0.10\n" {
		t.Fatalf("trace: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	// Usage errors, found by the skeleton or by the command, exit 2.
	for _, args := range [][]string{{"trace", "--run-dir", runDir}, {"trace", "--bogus"}, {"trace", "extra-arg"}} {
		if res := runMain(spec, args...); res.code != ExitUsage {
			t.Errorf("%v: exit %d, want %d; stderr %q", args, res.code, ExitUsage, res.stderr)
		}
	}
	if res := runMain(spec, "help"); !strings.Contains(res.stdout, "  trace     ask the daemon's own service\n") {
		t.Errorf("usage does not list the command:\n%s", res.stdout)
	}
	// Another daemon's Spec does not have it.
	if res := runMain(Spec{Name: "routerd"}, "trace"); res.code != ExitUsage || !strings.Contains(res.stderr, `unknown command "trace"`) {
		t.Errorf("routerd trace: exit %d, stderr %q", res.code, res.stderr)
	}
}
