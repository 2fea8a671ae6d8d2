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
	k *kernel
}

var _ Interface = (*Table)(nil)

// New returns the table of cfg's namespace. Nothing is read or written
// before the first Apply; a Config that cannot be written (a log group
// without a rate) makes every Apply fail.
func New(cfg Config) *Table {
	k := &kernel{netns: cfg.NetNS}
	return &Table{a: newApplier(cfg, k), k: k}
}

// Close closes the socket the table is written through (the table stays
// in the kernel); a later Apply opens another.
func (t *Table) Close() error { return t.k.close() }

// Apply is part of Interface.
func (t *Table) Apply(d *model.Datapath) (Result, error) { return t.a.apply(d) }

// ApplyDelta is part of Interface.
func (t *Table) ApplyDelta(d *model.Datapath, delta *model.Delta) (Result, error) {
	return t.a.applyDelta(d, delta)
}

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
	// w is the socket of the transactions (made on first use).
	w *nftutil.Writer
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
	why, have := staticDiff(rs, *kt)
	if why != "" {
		return nil, why, nil
	}
	for _, set := range kt.sets {
		s, _ := rs.setSpec(set.Name)
		kes, err := c.GetSetElements(set)
		if err != nil {
			return nil, "", fmt.Errorf("list elements of set %s: %w", s.name, err)
		}
		for _, e := range s.fromKernel(kes) {
			have.elems.add(s.name, e)
		}
	}
	return have, "", nil
}

func (k *kernel) commit(rs *ruleset, t *tx) (err error) {
	if k.w == nil {
		k.w = nftutil.NewWriter(nftutil.ConnConfig{NetNS: k.netns, TestDial: k.testDial})
	}
	c, err := k.w.Conn(t.kernelBytes(rs), t.messages(rs)+2) // and the batch begin and end
	if err != nil {
		return err
	}
	defer func() { k.w.Done(err) }()
	if err := t.replay(rs, newBatch(c, rs)); err != nil {
		return err
	}
	return c.Flush()
}

// close closes the socket of the transactions.
func (k *kernel) close() error {
	if k.w == nil {
		return nil
	}
	return k.w.Close()
}

func (k *kernel) delete() error {
	c, err := k.conn(0, 0, false)
	if err != nil {
		return err
	}
	_, err = nftutil.DeleteTable(c, TableName, nftables.TableFamilyINet)
	return err
}

// counters reads the last counter of every group chain (its drop) and
// the pending rules' counters. A missing table has counted nothing. (The
// kernel's rule dumps are superlinear in the table's rules: one dump of
// the whole table is no faster than a request per chain, some 200 ms at
// 1250 group chains.)
func (k *kernel) counters() (Counters, error) {
	c, err := k.conn(0, 0, true)
	if err != nil {
		return Counters{}, err
	}
	defer func() { _ = c.CloseLasting() }()
	out := Counters{Denied: map[model.GroupKey]Counter{}}
	kt, err := readTable(c)
	if err != nil || kt == nil {
		return out, err
	}
	for _, ch := range kt.chains {
		if key, ok := parseGroupChain(ch.Name); ok {
			rules := kt.rules[ch.Name]
			for i := len(rules) - 1; i >= 0; i-- {
				if n, ok := ruleCounter(rules[i]); ok {
					out.Denied[key] = n
					break
				}
			}
		}
	}
	for _, r := range kt.rules[chainPods] {
		// The pending rules are the ones that count (the jumps do not).
		if n, ok := ruleCounter(r); ok {
			out.Pending.Packets += n.Packets
			out.Pending.Bytes += n.Bytes
		}
	}
	return out, nil
}

func ruleCounter(r *nftables.Rule) (Counter, bool) {
	for _, e := range r.Exprs {
		if c, ok := e.(*expr.Counter); ok {
			return Counter{Packets: c.Packets, Bytes: c.Bytes}, true
		}
	}
	return Counter{}, false
}

// batch queues a transaction on a google/nftables connection (which
// buffers everything until Flush: one Flush is one kernel transaction).
type batch struct {
	c    *nftables.Conn
	rs   *ruleset
	tbl  *nftables.Table
	sets map[string]*nftables.Set
}

var _ sink = (*batch)(nil)

func newBatch(c *nftables.Conn, rs *ruleset) *batch {
	return &batch{c: c, rs: rs, tbl: table(), sets: map[string]*nftables.Set{}}
}

// set is the definition of set name for messages naming it, with an id of
// its own within the transaction (the library's counter is global).
func (b *batch) set(name string) (*nftables.Set, setSpec, error) {
	spec, ok := b.rs.setSpec(name)
	if !ok {
		return nil, spec, fmt.Errorf("not a set of firewalld's: %q", name)
	}
	s, ok := b.sets[name]
	if !ok {
		s = spec.nftSet(b.tbl, uint32(len(b.sets)+1))
		b.sets[name] = s
	}
	return s, spec, nil
}

func (b *batch) chain(k model.GroupKey) *nftables.Chain {
	return &nftables.Chain{Name: groupChainName(k), Table: b.tbl}
}

func (b *batch) recreate() error {
	// Adding first makes the delete succeed when the table is absent; the
	// delete drops whatever was there (foreign rules, sets and chains of
	// another layout).
	b.c.AddTable(b.tbl)
	b.c.DelTable(b.tbl)
	b.c.AddTable(b.tbl)
	for _, spec := range b.rs.sets {
		s, _, _ := b.set(spec.name)
		if err := b.c.AddSet(s, nil); err != nil {
			return fmt.Errorf("set %s: %w", spec.name, err)
		}
	}
	accept := nftables.ChainPolicyAccept
	for _, cs := range b.rs.chains {
		ch := &nftables.Chain{Name: cs.name, Table: b.tbl}
		if cs.hook != nil {
			ch.Hooknum = cs.hook
			ch.Priority = nftables.ChainPriorityRef(cs.priority)
			ch.Type = nftables.ChainTypeFilter
			ch.Policy = &accept
		}
		addRules(b.c, b.c.AddChain(ch), cs.rules)
	}
	return nil
}

func (b *batch) addSet(name string) error {
	s, _, err := b.set(name)
	if err != nil {
		return err
	}
	return b.c.AddSet(s, nil)
}

func (b *batch) addChain(k model.GroupKey) error {
	b.c.AddChain(b.chain(k))
	return nil
}

func (b *batch) flushChain(k model.GroupKey) error {
	b.c.FlushChain(b.chain(k))
	return nil
}

func (b *batch) addRules(k model.GroupKey, rules []model.Rule) error {
	addRules(b.c, b.chain(k), b.rs.groupRules(k, rules))
	return nil
}

func (b *batch) delElems(set string, es []elem) error {
	s, spec, err := b.set(set)
	if err != nil {
		return err
	}
	for _, chunk := range spec.chunks(es) {
		if err := b.c.SetDeleteElements(s, spec.kernelElems(chunk, false)); err != nil {
			return err
		}
	}
	return nil
}

func (b *batch) addElems(set string, es []elem) error {
	s, spec, err := b.set(set)
	if err != nil {
		return err
	}
	for _, chunk := range spec.chunks(es) {
		if err := b.c.SetAddElements(s, spec.kernelElems(chunk, true)); err != nil {
			return err
		}
	}
	return nil
}

func (b *batch) delChain(k model.GroupKey) error {
	b.c.DelChain(b.chain(k))
	return nil
}

func (b *batch) delSet(name string) error {
	s, _, err := b.set(name)
	if err != nil {
		return err
	}
	b.c.DelSet(s)
	return nil
}

func addRules(c *nftables.Conn, ch *nftables.Chain, rules []ruleSpec) {
	for _, r := range rules {
		c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: r.exprs, UserData: r.userData()})
	}
}

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}
