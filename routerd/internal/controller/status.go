package controller

import (
	"context"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
	"github.com/nodenet/nodenet/internal/daemon"
	"github.com/nodenet/nodenet/routerd/internal/model"
	"go.uber.org/zap"
	"google.golang.org/protobuf/types/known/timestamppb"
)

var _ daemon.StatusDetailer = (*Controller)(nil)

// StatusDetails is part of daemon.StatusDetailer: the BGP neighbours with
// their sessions, from the speaker (safe beside a sync).
func (c *Controller) StatusDetails(ctx context.Context, resp *nodev1.GetResponse) {
	states, err := c.k.Speaker.Peers(ctx)
	if err != nil {
		c.log.Debug("BGP peers for status", zap.Error(err))
		return
	}
	for _, s := range states {
		resp.BgpPeers = append(resp.BgpPeers, bgpPeerProto(s))
	}
}

func bgpPeerProto(s model.PeerState) *nodev1.BGPPeer {
	p := &nodev1.BGPPeer{
		Name: s.Name, Address: s.Address.String(), Asn: s.ASN, Kind: s.Kind.String(), State: s.State,
		Received: s.Received, Accepted: s.Accepted, Advertised: s.Advertised,
		GracefulRestart: s.GracefulRestart, EndOfRib: s.EndOfRIB, RouteReflectorClient: s.RRClient, Md5: s.Password != "",
	}
	if !s.Since.IsZero() {
		p.Since = timestamppb.New(s.Since)
	}
	return p
}
