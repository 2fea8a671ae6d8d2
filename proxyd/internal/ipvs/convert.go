package ipvs

import (
	"fmt"
	"math"
	"net/netip"

	libipvs "github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// The conversions between proxyd's types and github.com/cloudflare/ipvs's.
// They are the only place that knows the library's types; Kernel only sends
// what they produce. They are pure, so they are tested without a kernel.

// toLibProtocol maps proxyd's protocol to the kernel's IP protocol number.
func toLibProtocol(p model.Protocol) (libipvs.Protocol, error) {
	switch p {
	case model.TCP:
		return libipvs.TCP, nil
	case model.UDP:
		return libipvs.UDP, nil
	case model.SCTP:
		return libipvs.SCTP, nil
	}
	return 0, fmt.Errorf("protocol %s: %w", p, ErrInvalid)
}

// fromLibProtocol is the inverse of toLibProtocol; ok is false for a
// protocol proxyd has no name for.
func fromLibProtocol(p libipvs.Protocol) (model.Protocol, bool) {
	switch p {
	case libipvs.TCP:
		return model.TCP, true
	case libipvs.UDP:
		return model.UDP, true
	case libipvs.SCTP:
		return model.SCTP, true
	}
	return 0, false
}

// family is the IPVS address family of a, which checkAddr has accepted.
func family(a netip.Addr) libipvs.AddressFamily {
	if a.Is4() {
		return libipvs.INET
	}
	return libipvs.INET6
}

// checkAddr accepts the addresses the kernel can hold as they are: a zone
// or an IPv4-mapped IPv6 address would not come back from a List the same,
// so they are refused rather than silently changed.
func checkAddr(a netip.Addr) error {
	switch {
	case !a.IsValid():
		return fmt.Errorf("no address: %w", ErrInvalid)
	case a.Zone() != "":
		return fmt.Errorf("address %s has a zone: %w", a, ErrInvalid)
	case a.Is4In6():
		return fmt.Errorf("address %s is IPv4-mapped IPv6; use the IPv4 form: %w", a, ErrInvalid)
	}
	return nil
}

// hostMask is the persistence netmask of a single client address: /32 for
// IPv4 (sent as a netmask), /128 for IPv6 (sent as a prefix length). The
// kernel requires a netmask on every service write even when persistence is
// off, and proxyd's persistence (sessionAffinity ClientIP) is per client.
func hostMask(a netip.Addr) netmask.Mask {
	return netmask.MaskFrom(a.BitLen(), a.BitLen())
}

// checkService validates what both implementations refuse.
func checkService(s Service) error {
	if err := checkAddr(s.Addr); err != nil {
		return err
	}
	_, err := toLibProtocol(s.Proto)
	return err
}

// toLibServiceKey is the identity of a virtual service as the library
// sends it (address, port, protocol, family); enough for deletes, real
// server requests and lookups.
func toLibServiceKey(k model.VSKey) (libipvs.Service, error) {
	if err := checkAddr(k.Addr); err != nil {
		return libipvs.Service{}, err
	}
	proto, err := toLibProtocol(k.Proto)
	if err != nil {
		return libipvs.Service{}, err
	}
	return libipvs.Service{
		Address:  k.Addr,
		Port:     k.Port,
		Protocol: proto,
		Family:   family(k.Addr),
		Netmask:  hostMask(k.Addr),
	}, nil
}

// toLibService is a full virtual service for create and update.
func toLibService(s Service) (libipvs.Service, error) {
	ls, err := toLibServiceKey(s.VSKey)
	if err != nil {
		return libipvs.Service{}, err
	}
	ls.Scheduler = s.Scheduler
	if s.PersistenceTimeout > 0 {
		ls.Flags = libipvs.ServicePersistent
		ls.Timeout = s.PersistenceTimeout
	}
	return ls, nil
}

// fromLibService converts a service the kernel listed; ok is false for the
// ones proxyd cannot name (fwmark services, unknown protocol or family).
// Only the persistent flag is read: the kernel adds ServiceHashed to every
// service, and the timeout of a service without the flag means nothing.
func fromLibService(ls libipvs.Service) (Service, bool) {
	if ls.FWMark != 0 || !ls.Address.IsValid() {
		return Service{}, false
	}
	if (ls.Family == libipvs.INET) != ls.Address.Is4() || (ls.Family != libipvs.INET && ls.Family != libipvs.INET6) {
		return Service{}, false
	}
	proto, ok := fromLibProtocol(ls.Protocol)
	if !ok {
		return Service{}, false
	}
	s := Service{
		VSKey:     model.VSKey{Addr: ls.Address, Port: ls.Port, Proto: proto},
		Scheduler: ls.Scheduler,
	}
	if ls.Flags&libipvs.ServicePersistent != 0 {
		s.PersistenceTimeout = ls.Timeout
	}
	return s, true
}

// checkDest validates a real server of a virtual service of family of vs:
// masquerading needs both of the same family (the kernel forwards mixed
// families only through tunnels), and the kernel stores weights as int.
func checkDest(vs model.VSKey, d model.DestKey, weight uint32) error {
	if err := checkAddr(d.Addr); err != nil {
		return err
	}
	if d.Addr.Is4() != vs.Addr.Is4() {
		return fmt.Errorf("real server %s of %s: masquerading needs one address family: %w", d, vs, ErrInvalid)
	}
	if weight > math.MaxInt32 {
		return fmt.Errorf("weight %d of real server %s above %d: %w", weight, d, math.MaxInt32, ErrInvalid)
	}
	return nil
}

// toLibDest is a masquerading real server of vs.
func toLibDest(vs model.VSKey, d Dest) (libipvs.Destination, error) {
	if err := checkDest(vs, d.DestKey, d.Weight); err != nil {
		return libipvs.Destination{}, err
	}
	return libipvs.Destination{
		Address:   d.Addr,
		Port:      d.Port,
		Family:    family(d.Addr),
		FwdMethod: libipvs.Masquerade,
		Weight:    d.Weight,
	}, nil
}

// fromLibDest converts a real server the kernel listed, with its connection
// counts.
func fromLibDest(ld libipvs.DestinationExtended) Dest {
	return Dest{
		DestKey:       model.DestKey{Addr: ld.Address, Port: ld.Port},
		Weight:        ld.Weight,
		ActiveConns:   ld.ActiveConnections,
		InactiveConns: ld.InactiveConnections,
		// Someone else may have set another forwarding method; the
		// reconciler resets it (UpdateDest always writes masquerade).
		NotMasquerade: ld.FwdMethod != libipvs.Masquerade,
	}
}
