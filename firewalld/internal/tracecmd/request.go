package tracecmd

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	nodev1 "github.com/nodenet/nodenet/api/nodenet/node/v1"
)

// Request builds the trace request from --from and --to.
func Request(from, to string) (*nodev1.FirewallTraceServiceTraceRequest, error) {
	req := &nodev1.FirewallTraceServiceTraceRequest{}
	if err := setSource(req, strings.TrimSpace(from)); err != nil {
		return nil, err
	}
	if err := setDestination(req, strings.TrimSpace(to)); err != nil {
		return nil, err
	}
	return req, nil
}

func setSource(req *nodev1.FirewallTraceServiceTraceRequest, from string) error {
	if from == "" {
		return errors.New("--from is required (a pod as namespace/name or an IP address)")
	}
	pod, ip, err := parseEnd(from)
	if err != nil {
		return fmt.Errorf("--from %q: %w", from, err)
	}
	if pod != "" {
		req.Source = &nodev1.FirewallTraceServiceTraceRequest_FromPod{FromPod: pod}
	} else {
		req.Source = &nodev1.FirewallTraceServiceTraceRequest_FromIp{FromIp: ip}
	}
	return nil
}

// setDestination parses <pod|IP>:port[/proto]: the port is after the last
// colon, so IPv6 addresses come bracketed.
func setDestination(req *nodev1.FirewallTraceServiceTraceRequest, to string) error {
	const want = "want <namespace/name | IP>:port[/tcp|udp|sctp], e.g. shop/web:80/tcp, 198.18.128.5:53/udp or [2001:db8::5]:80"
	if to == "" {
		return errors.New("--to is required: " + want)
	}
	rest, proto := to, "tcp"
	// A protocol is a last "/word" without a colon after it.
	if i := strings.LastIndex(to, "/"); i > strings.LastIndex(to, ":") {
		rest, proto = to[:i], to[i+1:]
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return fmt.Errorf("--to %q: no port; %s", to, want)
	}
	host, portS := strings.TrimSuffix(strings.TrimPrefix(rest[:i], "["), "]"), rest[i+1:]
	port, err := strconv.ParseUint(portS, 10, 16)
	if err != nil || port == 0 {
		return fmt.Errorf("--to %q: port %q is not 1-65535; %s", to, portS, want)
	}
	pod, ip, err := parseEnd(host)
	if err != nil {
		return fmt.Errorf("--to %q: %w; %s", to, err, want)
	}
	if pod != "" {
		req.Destination = &nodev1.FirewallTraceServiceTraceRequest_ToPod{ToPod: pod}
	} else {
		req.Destination = &nodev1.FirewallTraceServiceTraceRequest_ToIp{ToIp: ip}
	}
	req.ToPort = uint32(port)
	switch strings.ToLower(proto) {
	case "tcp":
		req.ToProtocol = nodev1.Protocol_PROTOCOL_TCP
	case "udp":
		req.ToProtocol = nodev1.Protocol_PROTOCOL_UDP
	case "sctp":
		req.ToProtocol = nodev1.Protocol_PROTOCOL_SCTP
	default:
		return fmt.Errorf("--to %q: protocol %q is not tcp, udp or sctp", to, proto)
	}
	return nil
}

// parseEnd parses a pod (namespace/name) or an address.
func parseEnd(s string) (pod, ip string, err error) {
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err == nil {
			return "", "", errors.New("a CIDR is not an end; give one address")
		}
		ns, name, _ := strings.Cut(s, "/")
		if ns == "" || name == "" || strings.Contains(name, "/") {
			return "", "", errors.New("want a pod as namespace/name or an IP address")
		}
		return s, "", nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", "", errors.New("want a pod as namespace/name or an IP address")
	}
	return "", a.Unmap().String(), nil
}
