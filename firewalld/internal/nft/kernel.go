package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink/nltest"
	"github.com/nodenet/nodenet/firewalld/internal/model"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// Table is firewalld's table in the kernel, over google/nftables.
type Table struct {
	a applier
}

var _ Interface = (*Table)(nil)

// New returns the table of cfg's namespace. Nothing is read or written
// before the first Apply; a Config that cannot be written (a log group
// without a rate) makes every Apply fail.
func New(cfg Config) *Table {
	return &Table{a: newApplier(cfg, &kernel{netns: cfg.NetNS})}
}

// Apply is part of Interface.
func (t *Table) Apply(d *model.Datapath) (Result, error) { return t.a.apply(d) }

// Invalidate is part of Interface.
func (t *Table) Invalidate() { t.a.invalidate() }

// Delete is part of Interface.
func (t *Table) Delete() error { return t.a.delete() }

// Counters is part of Interface.
func (t *Table) Counters() (Counters, error) { return t.a.counters() }

// kernel is the backend over netlink.
type kernel struct {
	netns int
	// testDial replaces the kernel in unit tests (nltest).
	testDial nltest.Func
}

// conn returns a connection to the kernel: for a transaction of the given
// bytes and messages (its socket buffers fit them), or for reads (lasting:
// one socket for the many requests).
func (k *kernel) conn(bytes, messages int, lasting bool) (*nftables.Conn, error) {
	return nftutil.Dial(nftutil.ConnConfig{NetNS: k.netns, SendBuffer: bytes, Messages: messages, Lasting: lasting, TestDial: k.testDial})
}

// readTable reads the table's chains, their rules and its sets (not the
// elements) on c; nil when the table is missing.
func readTable(c *nftables.Conn) (*kernelTable, error) {
	tbl, err := nftutil.FindTable(c, TableName, nftables.TableFamilyINet)
	if err != nil || tbl == nil {
		return nil, err
	}
	kt := &kernelTable{table: tbl, rules: map[string][]*nftables.Rule{}}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != TableName {
			continue
		}
		kt.chains = append(kt.chains, ch)
		if kt.rules[ch.Name], err = c.GetRules(tbl, ch); err != nil {
			return nil, fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
	}
	if kt.sets, err = c.GetSets(tbl); err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	return kt, nil
}

func (k *kernel) read(rs *ruleset) (*content, string, error) {
	// One socket for the many requests of a read (one per chain and set).
	c, err := k.conn(0, 0, true)
	if err != nil {
		return nil, "", err
	}
	defer func() { _ = c.CloseLasting() }()
	kt, err := readTable(c)
	if err != nil {
		return nil, "", err
	}
	if kt == nil {
		return nil, "table missing", nil
	}
	why, deny := staticDiff(rs, *kt)
	if why != "" {
		return nil, why, nil
	}
	have := newContent()
	have.chains = deny
	byName := make(map[string]*nftables.Set, len(kt.sets))
	for _, s := range kt.sets {
		byName[s.Name] = s
	}
	for _, s := range rs.sets {
		kes, err := c.GetSetElements(byName[s.name])
		if err != nil {
			return nil, "", fmt.Errorf("list elements of set %s: %w", s.name, err)
		}
		for _, e := range s.fromKernel(kes) {
			have.elems.add(s.name, e)
		}
	}
	return &have, "", nil
}

func (k *kernel) commit(rs *ruleset, t *tx) error {
	c, err := k.conn(t.kernelBytes(rs), t.messages(rs)+2, false) // and the batch begin and end
	if err != nil {
		return err
	}
	if err := t.write(c, rs); err != nil {
		return err
	}
	return c.Flush()
}

func (k *kernel) delete() error {
	c, err := k.conn(0, 0, false)
	if err != nil {
		return err
	}
	_, err = nftutil.DeleteTable(c, TableName, nftables.TableFamilyINet)
	return err
}

// counters reads the first counter of every deny chain and the pending
// rules' counters. A missing table has counted nothing.
func (k *kernel) counters() (Counters, error) {
	c, err := k.conn(0, 0, true)
	if err != nil {
		return Counters{}, err
	}
	defer func() { _ = c.CloseLasting() }()
	kt, err := readTable(c)
	if err != nil || kt == nil {
		return Counters{Denied: map[GroupKey]Counter{}}, err
	}
	out := Counters{Denied: map[GroupKey]Counter{}}
	for _, ch := range kt.chains {
		if dir, id, ok := parseDenyChain(ch.Name); ok {
			if rules := kt.rules[ch.Name]; len(rules) > 0 {
				out.Denied[GroupKey{dir, id}] = firstCounter(rules[0])
			}
		}
	}
	for _, r := range kt.rules[chainPods] {
		if isPendingRule(r) {
			n := firstCounter(r)
			out.Pending.Packets += n.Packets
			out.Pending.Bytes += n.Bytes
		}
	}
	return out, nil
}

// isPendingRule: the rules of the pods chain that count are the pending
// ones (the jumps have no counter).
func isPendingRule(r *nftables.Rule) bool {
	for _, e := range r.Exprs {
		if _, ok := e.(*expr.Counter); ok {
			return true
		}
	}
	return false
}

func firstCounter(r *nftables.Rule) Counter {
	for _, e := range r.Exprs {
		if c, ok := e.(*expr.Counter); ok {
			return Counter{Packets: c.Packets, Bytes: c.Bytes}
		}
	}
	return Counter{}
}
