package querycmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/testutil"
)

// answers is a health server whose answer depends on the service asked:
// "ok" is serving, "bad" is the daemon finding the input wrong, anything
// else an internal error.
type answers struct {
	healthpb.UnimplementedHealthServer
}

func (answers) Check(_ context.Context, r *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	switch r.GetService() {
	case "ok":
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
	case "bad":
		return nil, status.Error(codes.InvalidArgument, "no such thing as bad")
	}
	return nil, status.Error(codes.Internal, "it broke")
}

func serve(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(testutil.SocketDir(t), "d.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, answers{})
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return sock
}

// command is a query asking for the service named by --what.
func command() daemon.Command {
	var what string
	return Command(Query[*healthpb.HealthCheckRequest, *healthpb.HealthCheckResponse]{
		Name:    "ask",
		Summary: "ask",
		Flags:   func(fs *pflag.FlagSet) { fs.StringVar(&what, "what", "", "what to ask") },
		Request: func() (*healthpb.HealthCheckRequest, error) {
			if what == "" {
				return nil, errors.New("--what is required")
			}
			return &healthpb.HealthCheckRequest{Service: what}, nil
		},
		Call: func(ctx context.Context, conn grpc.ClientConnInterface, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
			return healthpb.NewHealthClient(conn).Check(ctx, req)
		},
		Text: func(w io.Writer, r *healthpb.HealthCheckResponse) error {
			_, err := fmt.Fprintf(w, "status %s\n", r.GetStatus())
			return err
		},
	})
}

func runQuery(t *testing.T, socket string, args ...string) (int, string, string) {
	t.Helper()
	cmd := command()
	fs := pflag.NewFlagSet("ask", pflag.ContinueOnError)
	cmd.Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := cmd.Run(context.Background(), daemon.Invocation{Daemon: "testd", Socket: socket, Stdout: &out, Stderr: &errOut})
	return code, out.String(), errOut.String()
}

func TestCommand(t *testing.T) {
	sock := serve(t)
	for _, tc := range []struct {
		name       string
		socket     string
		args       []string
		code       int
		out, inErr string
	}{
		{"text", sock, []string{"--what", "ok"}, daemon.ExitOK, "status SERVING\n", ""},
		{"json", sock, []string{"--what", "ok", "-o", "json"}, daemon.ExitOK, "{\n  \"status\": \"SERVING\"\n}\n", ""},
		{"unknown output", sock, []string{"--what", "ok", "-o", "yaml"}, daemon.ExitUsage, "", `testd ask: --output "yaml": want text or json`},
		{"request error", sock, nil, daemon.ExitUsage, "", "testd ask: --what is required"},
		{"daemon finds input wrong", sock, []string{"--what", "bad"}, daemon.ExitUsage, "", "testd ask: no such thing as bad"},
		{"daemon fails", sock, []string{"--what", "other"}, daemon.ExitFailure, "", "testd ask: it broke"},
		{"no daemon", filepath.Join(testutil.SocketDir(t), "none.sock"), []string{"--what", "ok", "--timeout", "300ms"},
			daemon.ExitFailure, "", "testd ask: cannot reach testd at "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runQuery(t, tc.socket, tc.args...)
			if code != tc.code || out != tc.out || !strings.Contains(errOut, tc.inErr) || (tc.inErr == "") != (errOut == "") {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr with %q", code, out, errOut, tc.code, tc.out, tc.inErr)
			}
		})
	}
}
