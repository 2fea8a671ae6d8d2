package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink/nltest"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// Config configures a Table.
type Config struct {
	// NetNS is a file descriptor of the network namespace whose table to
	// program; 0 means the namespace of the process.
	NetNS int
}

// Table is proxyd's table in the kernel, over google/nftables.
type Table struct {
	a applier
	k *kernel
}

var _ Interface = (*Table)(nil)

// New returns the table of cfg's namespace. Nothing is read or written
// before the first Apply.
func New(cfg Config) *Table {
	k := &kernel{netns: cfg.NetNS}
	return &Table{a: newApplier(k), k: k}
}

// Close closes the socket the table is written through (the table stays
// in the kernel); a later Apply opens another.
func (t *Table) Close() error { return t.k.close() }

// Apply is part of Interface.
func (t *Table) Apply(d Desired) (Result, error) { return t.a.apply(d) }

// Delete is part of Interface.
func (t *Table) Delete() error { return t.a.delete() }

// Invalidate is part of Interface.
func (t *Table) Invalidate() { t.a.invalidate() }

// kernel is the backend over netlink.
type kernel struct {
	netns int
	// testDial replaces the kernel in unit tests (nltest).
	testDial nltest.Func
	// w is the socket of the transactions (made on first use).
	w *nftutil.Writer
}

// conn returns a connection whose socket buffers fit a batch of
// sendBuffer bytes (nftutil.Dial).
func (k *kernel) conn(sendBuffer int) (*nftables.Conn, error) {
	return nftutil.Dial(nftutil.ConnConfig{NetNS: k.netns, SendBuffer: sendBuffer, TestDial: k.testDial})
}

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

// find returns proxyd's table as the kernel lists it, nil if absent.
func find(c *nftables.Conn) (*nftables.Table, error) {
	return nftutil.FindTable(c, TableName, nftables.TableFamilyINet)
}

func (k *kernel) read(rs *ruleset) (content, string, error) {
	c, err := k.conn(0)
	if err != nil {
		return nil, "", err
	}
	tbl, err := find(c)
	if err != nil || tbl == nil {
		return nil, "table missing", err
	}
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, "", fmt.Errorf("list chains: %w", err)
	}
	var ours []*nftables.Chain
	rules := map[string][]*nftables.Rule{}
	for _, ch := range chains {
		if ch.Table == nil || ch.Table.Name != TableName {
			continue
		}
		ours = append(ours, ch)
		if rules[ch.Name], err = c.GetRules(tbl, ch); err != nil {
			return nil, "", fmt.Errorf("list rules of chain %s: %w", ch.Name, err)
		}
	}
	sets, err := c.GetSets(tbl)
	if err != nil {
		return nil, "", fmt.Errorf("list sets: %w", err)
	}
	if why := staticDiff(rs, tbl, ours, rules, sets); why != "" {
		return nil, why, nil
	}
	byName := make(map[string]*nftables.Set, len(sets))
	for _, s := range sets {
		byName[s.Name] = s
	}
	have := content{}
	for _, s := range rs.sets {
		kes, err := c.GetSetElements(byName[s.name])
		if err != nil {
			return nil, "", fmt.Errorf("list elements of set %s: %w", s.name, err)
		}
		for _, e := range s.fromKernel(kes) {
			have.add(s.name, e)
		}
	}
	return have, "", nil
}

func (k *kernel) commit(rs *ruleset, t *tx) (err error) {
	if k.w == nil {
		k.w = nftutil.NewWriter(nftutil.ConnConfig{NetNS: k.netns, TestDial: k.testDial})
	}
	// The acknowledgements fit the Writer's smallest receive buffer.
	c, err := k.w.Conn(t.kernelBytes(rs), 0)
	if err != nil {
		return err
	}
	defer func() { k.w.Done(err) }()
	if err := t.write(c, rs); err != nil {
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
	c, err := k.conn(0)
	if err != nil {
		return err
	}
	_, err = nftutil.DeleteTable(c, TableName, nftables.TableFamilyINet)
	return err
}
