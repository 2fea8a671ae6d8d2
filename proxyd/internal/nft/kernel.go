package nft

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/mdlayher/netlink/nltest"
	"golang.org/x/sys/unix"
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
}

var _ Interface = (*Table)(nil)

// New returns the table of cfg's namespace. Nothing is read or written
// before the first Apply.
func New(cfg Config) *Table {
	return &Table{a: newApplier(&kernel{netns: cfg.NetNS})}
}

// Apply is part of Interface.
func (t *Table) Apply(d Desired) (Result, error) { return t.a.apply(d) }

// Delete is part of Interface.
func (t *Table) Delete() error { return t.a.delete() }

// Invalidate is part of Interface.
func (t *Table) Invalidate() { t.a.invalidate() }

// Socket buffers. A transaction is one sendmsg, limited by the socket's
// send buffer (212992 bytes by default; 10k VIPs are more): proxyd forces
// a buffer that fits the batch, as nft does (SO_SNDBUFFORCE, which needs
// CAP_NET_ADMIN like the writes themselves). The kernel acknowledges every
// message of a batch, and dumps of 10k elements are long: the receive
// buffer is raised too, so acknowledgements are never dropped (ENOBUFS).
const (
	minSendBuffer = 1 << 20
	recvBuffer    = 4 << 20
)

// kernel is the backend over netlink.
type kernel struct {
	netns int
	// testDial replaces the kernel in unit tests (nltest).
	testDial nltest.Func
}

func (k *kernel) conn(sendBuffer int) (*nftables.Conn, error) {
	opts := []nftables.ConnOption{nftables.WithSockOptions(socketBuffers(max(sendBuffer, minSendBuffer), recvBuffer))}
	if k.netns != 0 {
		opts = append(opts, nftables.WithNetNSFd(k.netns))
	}
	if k.testDial != nil {
		opts = append(opts, nftables.WithTestDial(k.testDial))
	}
	return nftables.New(opts...)
}

func socketBuffers(send, recv int) nftables.SockOption {
	return func(c *netlink.Conn) error {
		rc, err := c.SyscallConn()
		if err != nil {
			return nil // not a real socket (tests)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = errors.Join(
				setBuffer(int(fd), unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, send),
				setBuffer(int(fd), unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, recv))
		}); err != nil {
			return err
		}
		return serr
	}
}

// setBuffer sets a socket buffer, beyond the sysctl maximum when allowed;
// without CAP_NET_ADMIN the plain option is capped, and a batch too large
// for it fails with EMSGSIZE, which the caller reports.
func setBuffer(fd, force, plain, n int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, n); err == nil {
		return nil
	}
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, n)
}

func table() *nftables.Table {
	return &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
}

// find returns proxyd's table as the kernel lists it, nil if absent.
func find(c *nftables.Conn) (*nftables.Table, error) {
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == TableName && t.Family == nftables.TableFamilyINet {
			return t, nil
		}
	}
	return nil, nil
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

func (k *kernel) commit(rs *ruleset, t *tx) error {
	c, err := k.conn(t.kernelBytes(rs))
	if err != nil {
		return err
	}
	if err := t.write(c, rs); err != nil {
		return err
	}
	return c.Flush()
}

func (k *kernel) delete() error {
	c, err := k.conn(0)
	if err != nil {
		return err
	}
	tbl, err := find(c)
	if err != nil || tbl == nil {
		return err
	}
	// Add first: if the table went away meanwhile, the delete still works.
	c.AddTable(table())
	c.DelTable(table())
	return c.Flush()
}
