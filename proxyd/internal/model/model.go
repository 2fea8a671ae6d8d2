// Package model holds proxyd's desired-state values: the IPVS virtual
// services and real servers a node should have, in proxyd's own types (the
// kernel adapters convert at their boundary).
package model

import (
	"cmp"
	"fmt"
	"net/netip"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
)

// Protocol of a virtual service.
type Protocol uint8

// The protocols a Service port can use.
const (
	TCP Protocol = iota + 1
	UDP
	SCTP
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return "Protocol(" + strconv.Itoa(int(p)) + ")"
}

// Kind says how a virtual service's address reaches the Service.
type Kind uint8

// The kinds of VIP.
const (
	ClusterIP Kind = iota + 1
	ExternalIP
	LoadBalancer
	NodePort
)

func (k Kind) String() string {
	switch k {
	case ClusterIP:
		return "ClusterIP"
	case ExternalIP:
		return "ExternalIP"
	case LoadBalancer:
		return "LoadBalancer"
	case NodePort:
		return "NodePort"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// External reports whether traffic to this kind of VIP comes from outside
// the cluster as far as externalTrafficPolicy is concerned.
func (k Kind) External() bool { return k != ClusterIP }

// VSKey identifies an IPVS virtual service.
type VSKey struct {
	Addr  netip.Addr
	Port  uint16
	Proto Protocol
}

func (k VSKey) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.Addr, k.Port), k.Proto)
}

// Compare orders keys by address, port, protocol.
func (k VSKey) Compare(o VSKey) int {
	return cmp.Or(k.Addr.Compare(o.Addr), cmp.Compare(k.Port, o.Port), cmp.Compare(k.Proto, o.Proto))
}

// DestKey identifies a real server of a virtual service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

func (k DestKey) String() string { return netip.AddrPortFrom(k.Addr, k.Port).String() }

// Compare orders destination keys.
func (k DestKey) Compare(o DestKey) int {
	return cmp.Or(k.Addr.Compare(o.Addr), cmp.Compare(k.Port, o.Port))
}

// Dest is one real server.
type Dest struct {
	DestKey
	Weight uint32
	// Local: the endpoint runs on this node.
	Local bool
}

// VirtualService is one IPVS virtual service with its real servers.
type VirtualService struct {
	VSKey
	Scheduler string
	// PersistenceTimeout > 0 makes the service persistent (sessionAffinity
	// ClientIP), in seconds.
	PersistenceTimeout uint32
	// Dests are sorted by DestKey.
	Dests []Dest

	Service  types.NamespacedName
	PortName string
	Kind     Kind
	// ExternalLocal: externalTrafficPolicy Local applies (external kinds
	// only); the client's source address must be kept (no SNAT).
	ExternalLocal bool
	// LocalEndpoints: the Service has ready endpoints on this node (what
	// routerd needs to announce an ExternalLocal VIP).
	LocalEndpoints bool
	// SourceRestricted: only clients in SourceRanges may reach this
	// LoadBalancer VIP (SourceRanges may then be empty: nobody may).
	SourceRestricted bool
	SourceRanges     []netip.Prefix
}

// HealthCheck is a healthCheckNodePort proxyd serves for a Service with
// externalTrafficPolicy Local.
type HealthCheck struct {
	Service        types.NamespacedName
	Port           uint16
	LocalEndpoints int
}

// State is everything proxyd wants programmed on the node.
type State struct {
	// Services are sorted by VSKey.
	Services     []*VirtualService
	HealthChecks []HealthCheck
}
