package podnet

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// checkCIDR says why p cannot be a pod CIDR: it must be a valid network
// address (no host bits; IPv4 written as IPv4, not mapped into IPv6) with
// room for the gateway and at least one pod.
func checkCIDR(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("invalid prefix")
	case p.Addr().Is4In6():
		return fmt.Errorf("%s: IPv4-mapped IPv6 prefix", p)
	case p.Masked() != p:
		return fmt.Errorf("%s: host bits set (the network is %s)", p, p.Masked())
	case p.Bits() > p.Addr().BitLen()-2:
		return fmt.Errorf("%s: too small for a gateway and a pod", p)
	}
	return nil
}

// Gateway is the pods' gateway in cidr, with cidr's length
// (198.18.128.0/24: 198.18.128.1/24): its first host address, host-local's
// default gateway of the range, which the bridge carries.
func Gateway(cidr netip.Prefix) (netip.Prefix, error) {
	if err := checkCIDR(cidr); err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(cidr.Addr().Next(), cidr.Bits()), nil
}

// isGatewayShaped reports whether p is the gateway of its own network (its
// first host address), as a gateway of an earlier pod CIDR is.
func isGatewayShaped(p netip.Prefix) bool {
	g, err := Gateway(p.Masked())
	return err == nil && g == p
}

// BridgeMAC is the bridge's fixed hardware address for a node whose (first)
// pod CIDR is cidr: locally administered, unicast, the same on every call
// and after every restart, and different between nodes. A bridge whose
// address is set explicitly keeps it as ports come and go.
func BridgeMAC(cidr netip.Prefix) (net.HardwareAddr, error) {
	if !cidr.IsValid() {
		return nil, errors.New("bridge MAC: invalid prefix")
	}
	sum := sha256.Sum256([]byte("nodenet bridge " + cidr.Masked().String()))
	mac := net.HardwareAddr(sum[:6:6])
	mac[0] = mac[0]&^0x01 | 0x02 // unicast, locally administered
	return mac, nil
}
