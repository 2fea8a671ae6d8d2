package tracecmd

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
)

// Request builds the trace request from --from and --to.
func Request(from, to string) (*nodev1.ProxyTraceServiceTraceRequest, error) {
	req := &nodev1.ProxyTraceServiceTraceRequest{}
	if err := setDestination(req, to); err != nil {
		return nil, err
	}
	if err := setSource(req, from); err != nil {
		return nil, err
	}
	return req, nil
}

func setDestination(req *nodev1.ProxyTraceServiceTraceRequest, to string) error {
	if to == "" {
		return errors.New("--to is required (IP:port[/proto])")
	}
	hostPort, proto, hasProto := strings.Cut(to, "/")
	ap, err := netip.ParseAddrPort(hostPort)
	if err != nil || ap.Addr().Zone() != "" {
		return fmt.Errorf("--to %q: want IP:port[/tcp|udp|sctp], e.g. 198.19.0.10:80/tcp or [2001:db8::10]:80/udp", to)
	}
	if ap.Port() == 0 {
		return fmt.Errorf("--to %q: port 0 is not a Service port", to)
	}
	req.ToIp, req.ToPort, req.ToProtocol = ap.Addr().Unmap().String(), uint32(ap.Port()), nodev1.Protocol_PROTOCOL_TCP
	if hasProto {
		switch strings.ToLower(proto) {
		case "tcp":
		case "udp":
			req.ToProtocol = nodev1.Protocol_PROTOCOL_UDP
		case "sctp":
			req.ToProtocol = nodev1.Protocol_PROTOCOL_SCTP
		default:
			return fmt.Errorf("--to %q: protocol %q is not tcp, udp or sctp", to, proto)
		}
	}
	return nil
}

func setSource(req *nodev1.ProxyTraceServiceTraceRequest, from string) error {
	from = strings.TrimSpace(from)
	switch {
	case from == "node":
		req.Source = &nodev1.ProxyTraceServiceTraceRequest_FromNode{FromNode: true}
	case strings.Contains(from, "/"):
		if _, err := netip.ParsePrefix(from); err == nil {
			return fmt.Errorf("--from %q: a CIDR is not a source; give one address", from)
		}
		ns, name, _ := strings.Cut(from, "/")
		if ns == "" || name == "" || strings.Contains(name, "/") {
			return fmt.Errorf("--from %q: want a pod as namespace/name, \"node\" or an IP address", from)
		}
		req.Source = &nodev1.ProxyTraceServiceTraceRequest_FromPod{FromPod: from}
	default:
		a, err := netip.ParseAddr(from)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("--from %q: want a pod as namespace/name, \"node\" or an IP address", from)
		}
		req.Source = &nodev1.ProxyTraceServiceTraceRequest_FromIp{FromIp: a.Unmap().String()}
	}
	return nil
}
