package controller

import (
	"strings"

	"github.com/nodenet/nodenet/firewalld/internal/policy"
	"github.com/prometheus/client_golang/prometheus"
)

// dropMetrics exports the table's drop counters per policy. A packet no
// rule of a target group allowed is denied by all the group's policies
// together, so it counts for each of them. The kernel's counters live in
// the drop rules of the groups' chains and start again when a group is new
// or its rules are rewritten (a policy change); the totals here add the
// increases, so they only grow.
//
// It runs under the controller's syncMu (Sync calls setGroups with it held,
// Collect takes it), so the table is never read while a sync writes it.
type dropMetrics struct {
	c        *Controller
	groups   map[GroupKey][]string // policies of each group
	seen     map[GroupKey]uint64   // last kernel value read
	totals   map[[2]string]float64 // policy, direction → packets
	pending  float64
	lastPend uint64
	policyD  *prometheus.Desc
	pendingD *prometheus.Desc
}

func newDropMetrics(c *Controller) *dropMetrics {
	return &dropMetrics{
		c: c, groups: map[GroupKey][]string{}, seen: map[GroupKey]uint64{}, totals: map[[2]string]float64{},
		policyD: prometheus.NewDesc("firewalld_policy_drops_total",
			"Packets dropped because no rule of the policies selecting the pod allowed them; counted for each of those policies.",
			[]string{"namespace", "policy", "direction"}, nil),
		pendingD: prometheus.NewDesc("firewalld_pending_drops_total",
			"Packets dropped because they came from or went to an address of the node's pod CIDRs firewalld did not know yet (fail closed for new pods).",
			nil, nil),
	}
}

// setGroups records the groups of the sync about to be applied, after
// crediting the drops counted so far to the current ones.
func (m *dropMetrics) setGroups(gs []policy.Group) {
	m.collectLocked()
	next := make(map[GroupKey][]string, len(gs))
	for _, g := range gs {
		next[GroupKey{g.Direction, g.ID}] = g.Policies
	}
	for k := range m.seen {
		if _, ok := next[k]; !ok {
			delete(m.seen, k) // its chain goes with this sync
		}
	}
	m.groups = next
}

// collectLocked reads the kernel's counters and adds their increases.
func (m *dropMetrics) collectLocked() {
	d, err := m.c.table.Drops()
	if err != nil {
		return // the table may not exist yet; nothing counted
	}
	if d.Pending >= m.lastPend {
		m.pending += float64(d.Pending - m.lastPend)
	} else {
		m.pending += float64(d.Pending)
	}
	m.lastPend = d.Pending
	for k, n := range d.Groups {
		prev := m.seen[k]
		inc := n - prev
		if n < prev {
			inc = n // the chain was made anew
		}
		m.seen[k] = n
		if inc == 0 {
			continue
		}
		for _, p := range m.groups[k] {
			m.totals[[2]string{p, k.Direction.String()}] += float64(inc)
		}
	}
}

// Describe is part of prometheus.Collector.
func (m *dropMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.policyD
	ch <- m.pendingD
}

// Collect is part of prometheus.Collector.
func (m *dropMetrics) Collect(ch chan<- prometheus.Metric) {
	m.c.syncMu.Lock()
	defer m.c.syncMu.Unlock()
	m.collectLocked()
	for k, v := range m.totals {
		ns, name, _ := strings.Cut(k[0], "/")
		ch <- prometheus.MustNewConstMetric(m.policyD, prometheus.CounterValue, v, ns, name, k[1])
	}
	ch <- prometheus.MustNewConstMetric(m.pendingD, prometheus.CounterValue, m.pending)
}
