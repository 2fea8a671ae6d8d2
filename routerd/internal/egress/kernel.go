package egress

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/nodenet/nodenet/internal/nftutil"
)

// Config configures a Table.
type Config struct {
	// NetNS is a file descriptor of the network namespace whose table to
	// program; 0 means the namespace of the process.
	NetNS int
}

// Table is routerd's table in the kernel, over google/nftables.
type Table struct {
	a applier
	k *kernel
}

var _ Interface = (*Table)(nil)

// New returns the table of cfg's namespace. Nothing is read or written
// before the first Apply.
func New(cfg Config) *Table {
	return newTable(nftutil.ConnConfig{NetNS: cfg.NetNS})
}

// newTable is New with the connection's config (unit tests replace the
// kernel with nltest).
func newTable(cc nftutil.ConnConfig) *Table {
	k := &kernel{w: nftutil.NewWriter(cc)}
	return &Table{a: applier{be: k}, k: k}
}

// Apply is part of Interface.
func (t *Table) Apply(d Desired) (Result, error) { return t.a.apply(d) }

// Invalidate is part of Interface.
func (t *Table) Invalidate() { t.a.invalidate() }

// Delete is part of Interface.
func (t *Table) Delete() error { return t.a.delete() }

// Close closes the table's socket (the table stays in the kernel); a
// later call opens another.
func (t *Table) Close() error { return t.k.w.Close() }

// kernel is the backend over netlink: one lasting socket (nftutil.Writer)
// for reads and transactions alike.
type kernel struct {
	w *nftutil.Writer
}

func (k *kernel) read() (_ content, _ string, err error) {
	c, err := k.w.Conn(0, 0)
	if err != nil {
		return nil, "", err
	}
	defer func() { k.w.Done(err) }()
	tbl, err := nftutil.FindTable(c, TableName, nftables.TableFamilyINet)
	if err != nil || tbl == nil {
		return nil, "table missing", err
	}
	if tbl.Flags != 0 {
		return nil, fmt.Sprintf("table flags %#x", tbl.Flags), nil
	}
	if why, err := chainDiff(c, tbl); why != "" || err != nil {
		return nil, why, err
	}
	sets, err := c.GetSets(tbl)
	if err != nil {
		return nil, "", fmt.Errorf("list sets: %w", err)
	}
	specs := setSpecs()
	if len(sets) != len(specs) {
		return nil, fmt.Sprintf("%d sets, want %d", len(sets), len(specs)), nil
	}
	have := content{}
	for _, s := range specs {
		got := findSet(sets, s.name)
		if got == nil {
			return nil, "set " + s.name + " missing", nil
		}
		if why := setDiff(s, got); why != "" {
			return nil, "set " + s.name + ": " + why, nil
		}
		kes, err := c.GetSetElements(got)
		if err != nil {
			return nil, "", fmt.Errorf("list elements of set %s: %w", s.name, err)
		}
		rs, ok := rangesFromKernel(s, kes)
		if !ok {
			return nil, "set " + s.name + ": an element is not an address", nil
		}
		have[s.name] = rs
	}
	return have, "", nil
}

// chainDiff says how the table's chains differ from the one postrouting
// chain with its rules ("" when they do not).
func chainDiff(c *nftables.Conn, tbl *nftables.Table) (string, error) {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return "", fmt.Errorf("list chains: %w", err)
	}
	var ours []*nftables.Chain
	for _, ch := range chains {
		if ch.Table != nil && ch.Table.Name == TableName {
			ours = append(ours, ch)
		}
	}
	want := postrouting(tbl)
	if len(ours) != 1 || ours[0].Name != want.Name {
		return fmt.Sprintf("%d chains, want chain %s only", len(ours), want.Name), nil
	}
	if why := nftutil.BaseChainDiff(want, ours[0]); why != "" {
		return "chain " + want.Name + ": " + why, nil
	}
	rules, err := c.GetRules(tbl, ours[0])
	if err != nil {
		return "", fmt.Errorf("list rules of chain %s: %w", want.Name, err)
	}
	var wantRules []*nftables.Rule
	for _, r := range ruleSpecs() {
		wantRules = append(wantRules, r.rule(tbl, want))
	}
	if why := nftutil.RulesDiff(nftables.TableFamilyINet, wantRules, rules); why != "" {
		return "chain " + want.Name + ": " + why, nil
	}
	return "", nil
}

func findSet(sets []*nftables.Set, name string) *nftables.Set {
	for _, s := range sets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// setDiff compares a set's definition with the one routerd writes.
func setDiff(want setSpec, got *nftables.Set) string {
	w := want.nftSet(table(), 0)
	switch {
	case got.Anonymous || got.Constant || got.IsMap || got.HasTimeout || got.Dynamic || got.Concatenation:
		return "flags differ"
	case !got.Interval:
		return "not an interval set"
	case got.KeyType.GetNFTMagic() != w.KeyType.GetNFTMagic() || got.KeyType.Bytes != uint32(want.keyLen()):
		return fmt.Sprintf("key type %s (%d bytes), want %s", got.KeyType.Name, got.KeyType.Bytes, w.KeyType.Name)
	}
	return ""
}

func (k *kernel) commit(t *tx) (err error) {
	c, err := k.w.Conn(t.kernelBytes(), t.messages())
	if err != nil {
		return err
	}
	defer func() { k.w.Done(err) }()
	if err := t.write(c); err != nil {
		return err
	}
	return c.Flush()
}

func (k *kernel) delete() (err error) {
	c, err := k.w.Conn(0, 0)
	if err != nil {
		return err
	}
	defer func() { k.w.Done(err) }()
	_, err = nftutil.DeleteTable(c, TableName, nftables.TableFamilyINet)
	return err
}
