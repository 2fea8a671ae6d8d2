// Package routercmd is `routerd routes` and `routerd peers`: they ask the
// routerd of this node, over its unix socket, for its routing table and
// its BGP neighbours, and print the answer as a table or as JSON.
package routercmd

import (
	"context"

	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/internal/querycmd"
)

// Commands are routerd's extra subcommands, by name.
func Commands() map[string]daemon.Command {
	return map[string]daemon.Command{"routes": routes(), "peers": peers()}
}

func routes() daemon.Command {
	var prefix string
	return querycmd.Command(querycmd.Query[*nodev1.RouterServiceRoutesRequest, *nodev1.RouterServiceRoutesResponse]{
		Name:    "routes",
		Summary: "list the prefixes routerd learned (next hop, peer, link, installed or why not) and advertises",
		Flags: func(fs *pflag.FlagSet) {
			fs.StringVar(&prefix, "prefix", "", "only the routes overlapping this address or prefix")
		},
		Request: func() (*nodev1.RouterServiceRoutesRequest, error) {
			return &nodev1.RouterServiceRoutesRequest{Prefix: prefix}, nil
		},
		Call: func(ctx context.Context, conn grpc.ClientConnInterface, req *nodev1.RouterServiceRoutesRequest) (*nodev1.RouterServiceRoutesResponse, error) {
			return nodev1.NewRouterServiceClient(conn).Routes(ctx, req)
		},
		Text: WriteRoutes,
	})
}

func peers() daemon.Command {
	return querycmd.Command(querycmd.Query[*nodev1.RouterServicePeersRequest, *nodev1.RouterServicePeersResponse]{
		Name:    "peers",
		Summary: "list routerd's BGP neighbours: session, uptime, prefixes received, accepted, routed and advertised, MD5 and graceful restart",
		Request: func() (*nodev1.RouterServicePeersRequest, error) { return &nodev1.RouterServicePeersRequest{}, nil },
		Call: func(ctx context.Context, conn grpc.ClientConnInterface, req *nodev1.RouterServicePeersRequest) (*nodev1.RouterServicePeersResponse, error) {
			return nodev1.NewRouterServiceClient(conn).Peers(ctx, req)
		},
		Text: WritePeers,
	})
}
