package ipvs

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// More errors every implementation returns (wrapped), besides ErrExists and
// ErrNotFound.
var (
	// ErrNoIPVS: the kernel (of the network namespace the implementation
	// was opened in) has no IPVS.
	ErrNoIPVS = errors.New("the kernel has no IPVS (generic netlink family \"IPVS\" not found; is the ip_vs module loaded?)")
	// ErrUnknownScheduler: the kernel has no scheduler of that name (its
	// ip_vs_<name> module is missing).
	ErrUnknownScheduler = errors.New("unknown scheduler")
	// ErrInvalid: a value the kernel refuses (an invalid or zoned address,
	// an unknown protocol, a real server of the other family, a weight
	// above 2^31-1). Retrying does not help.
	ErrInvalid = errors.New("invalid argument")
	// ErrInconsistentDump: every attempt to dump the table raced with
	// writes by someone else. Retrying later helps.
	ErrInconsistentDump = errors.New("the dump kept changing while it was read")
)

// request is one kind of IPVS request. Which errno means what depends on it:
// the kernel answers ESRCH for a missing virtual service, ENOENT for a
// missing real server, and also ENOENT for a missing scheduler module when
// it creates or changes a service (net/netfilter/ipvs/ip_vs_ctl.c,
// ip_vs_genl_set_cmd, ip_vs_add_service, ip_vs_edit_dest, ip_vs_del_dest).
type request uint8

const (
	reqCreateService request = iota
	reqUpdateService
	reqDeleteService
	reqCreateDest
	reqUpdateDest
	reqDeleteDest
	reqGetService
)

// kind maps the kernel's answer to one request to the error callers test
// for with errors.Is; nil when the errno means nothing particular.
func (r request) kind(err error) error {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return nil
	}
	switch errno {
	case unix.EEXIST:
		if r == reqCreateService || r == reqCreateDest {
			return ErrExists
		}
	case unix.ESRCH:
		// The virtual service is missing (every request but a create of
		// one names an existing service).
		return ErrNotFound
	case unix.ENOENT:
		switch r {
		case reqCreateService, reqUpdateService:
			return ErrUnknownScheduler
		case reqUpdateDest, reqDeleteDest:
			return ErrNotFound
		}
	case unix.EINVAL, unix.ERANGE:
		return ErrInvalid
	}
	return nil
}

// wrap makes the error of a request: what was asked, the kind callers test
// for, and the kernel's own answer (errors.Is works on both).
func (r request) wrap(what string, err error) error {
	if k := r.kind(err); k != nil {
		return fmt.Errorf("ipvs: %s: %w: %w", what, k, err)
	}
	return fmt.Errorf("ipvs: %s: %w", what, err)
}
