// Package ipvs is proxyd's port to the kernel's IPVS tables: a narrow
// interface in proxyd's own types, the real implementation over
// github.com/cloudflare/ipvs (generic netlink), and an in-memory fake with
// operation counts for the reconciler's tests.
package ipvs

import (
	"errors"

	"github.com/nodenet/nodenet/proxyd/internal/model"
)

// Service is a virtual service as the kernel has it.
type Service struct {
	model.VSKey
	Scheduler string
	// PersistenceTimeout > 0: persistent, in seconds.
	PersistenceTimeout uint32
}

// Dest is a real server as the kernel has it.
type Dest struct {
	model.DestKey
	Weight uint32
	// Connection counts, for draining removed real servers.
	ActiveConns, InactiveConns uint32
	// NotMasquerade: the kernel forwards to it by another method (direct
	// routing, tunnel) than the masquerading proxyd programs. Only List
	// and ListDests set it.
	NotMasquerade bool
}

// Entry is one virtual service with its real servers.
type Entry struct {
	Service
	Dests []Dest
}

// Interface is what proxyd does to IPVS. Every call is one kernel request.
// All real servers are masquerading (NAT) forwards.
type Interface interface {
	// List returns every virtual service of the node (proxyd's and anyone
	// else's) with its real servers. Fwmark services are not listed.
	List() ([]Entry, error)
	// ListDests returns the real servers of one virtual service.
	ListDests(model.VSKey) ([]Dest, error)
	CreateService(Service) error
	// UpdateService changes the scheduler or persistence of a service.
	UpdateService(Service) error
	DeleteService(model.VSKey) error
	CreateDest(model.VSKey, Dest) error
	// UpdateDest changes a real server's weight.
	UpdateDest(model.VSKey, Dest) error
	DeleteDest(model.VSKey, model.DestKey) error
}

// Errors every implementation returns (wrapped) so callers can tell them
// apart: creating what exists, changing or deleting what does not.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
)
