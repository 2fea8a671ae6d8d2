package nftutil

import (
	"fmt"

	"github.com/google/nftables"
)

// FindTable returns the table name of family as the kernel lists it (with
// its flags), nil if there is none.
func FindTable(c *nftables.Conn, name string, family nftables.TableFamily) (*nftables.Table, error) {
	tables, err := c.ListTablesOfFamily(family)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == name && t.Family == family {
			return t, nil
		}
	}
	return nil, nil
}

// DeleteTable deletes the table name of family, with everything in it, and
// nothing else; a missing table is no error. It reports whether a
// transaction was sent; the caller wraps its error with what the table is.
func DeleteTable(c *nftables.Conn, name string, family nftables.TableFamily) (bool, error) {
	tbl, err := FindTable(c, name, family)
	if err != nil || tbl == nil {
		return false, err
	}
	// Add first: if the table went away meanwhile, the delete still works.
	t := &nftables.Table{Name: name, Family: family}
	c.AddTable(t)
	c.DelTable(t)
	return true, c.Flush()
}
