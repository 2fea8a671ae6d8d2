package app

import (
	"net/netip"

	"github.com/nodenet/nodenet/proxyd/internal/conntrack"
	"github.com/nodenet/nodenet/proxyd/internal/ipvs"
	"github.com/nodenet/nodenet/proxyd/internal/model"
	"github.com/nodenet/nodenet/proxyd/internal/vip"
	"github.com/prometheus/client_golang/prometheus"
)

// Kernel write accounting: proxyd_kernel_writes_total{target} counts every
// write request proxyd makes to the kernel, whatever its outcome, so an
// operator (and the end-to-end tests) can see that a restarted proxyd over
// an unchanged cluster writes nothing (DESIGN.md: start-up adopts and
// converges by diff). It is counted at the kernel ports, below the
// reconciler, so it holds whatever the reconciler decides.
//
//	ipvs       virtual and real server creates, updates and deletes
//	routes     VIP routes added or deleted (one per VIP, however batched)
//	nftables   messages of the transactions applied to proxyd's table
//	conntrack  conntrack entries deleted (removed UDP real servers)
//	sysctl     kernel settings changed at start

// Write targets, the values of the target label.
const (
	writesIPVS      = "ipvs"
	writesRoutes    = "routes"
	writesNFTables  = "nftables"
	writesConntrack = "conntrack"
	writesSysctl    = "sysctl"
)

// kernelWrites is proxyd_kernel_writes_total, every target present from
// the start (at 0), so that "nothing written" is a value, not a gap.
type kernelWrites struct {
	vec *prometheus.CounterVec
}

func newKernelWrites(reg prometheus.Registerer) *kernelWrites {
	w := &kernelWrites{vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "proxyd", Name: "kernel_writes_total",
		Help: "Write requests proxyd made to the kernel, by target (ipvs: virtual and real servers; routes: VIP routes; nftables: messages to its table; conntrack: entries deleted; sysctl: settings changed).",
	}, []string{"target"})}
	for _, t := range []string{writesIPVS, writesRoutes, writesNFTables, writesConntrack, writesSysctl} {
		w.vec.WithLabelValues(t)
	}
	if reg != nil {
		reg.MustRegister(w.vec)
	}
	return w
}

// add counts n writes to target; a nil kernelWrites counts nothing.
func (w *kernelWrites) add(target string, n int) {
	if w == nil || n <= 0 {
		return
	}
	w.vec.WithLabelValues(target).Add(float64(n))
}

// countingIPVS counts the write calls made to an ipvs.Interface.
type countingIPVS struct {
	ipvs.Interface
	w *kernelWrites
}

func (c countingIPVS) CreateService(s ipvs.Service) error {
	c.w.add(writesIPVS, 1)
	return c.Interface.CreateService(s)
}

func (c countingIPVS) UpdateService(s ipvs.Service) error {
	c.w.add(writesIPVS, 1)
	return c.Interface.UpdateService(s)
}

func (c countingIPVS) DeleteService(k model.VSKey) error {
	c.w.add(writesIPVS, 1)
	return c.Interface.DeleteService(k)
}

func (c countingIPVS) CreateDest(k model.VSKey, d ipvs.Dest) error {
	c.w.add(writesIPVS, 1)
	return c.Interface.CreateDest(k, d)
}

func (c countingIPVS) UpdateDest(k model.VSKey, d ipvs.Dest) error {
	c.w.add(writesIPVS, 1)
	return c.Interface.UpdateDest(k, d)
}

func (c countingIPVS) DeleteDest(k model.VSKey, d model.DestKey) error {
	c.w.add(writesIPVS, 1)
	return c.Interface.DeleteDest(k, d)
}

// countingRoutes counts the VIP routes written through a vip.Interface.
type countingRoutes struct {
	vip.Interface
	w *kernelWrites
}

func (c countingRoutes) Add(a netip.Addr) error {
	c.w.add(writesRoutes, 1)
	return c.Interface.Add(a)
}

func (c countingRoutes) Delete(a netip.Addr) error {
	c.w.add(writesRoutes, 1)
	return c.Interface.Delete(a)
}

func (c countingRoutes) AddAll(vips []netip.Addr) error {
	c.w.add(writesRoutes, len(vips))
	return c.Interface.AddAll(vips)
}

func (c countingRoutes) DeleteAll(vips []netip.Addr) error {
	c.w.add(writesRoutes, len(vips))
	return c.Interface.DeleteAll(vips)
}

// countingConntrack counts the conntrack entries deleted.
type countingConntrack struct {
	conntrack.Interface
	w *kernelWrites
}

func (c countingConntrack) DeleteUDP(flows []conntrack.Flow) (uint, error) {
	n, err := c.Interface.DeleteUDP(flows)
	c.w.add(writesConntrack, int(n))
	return n, err
}
