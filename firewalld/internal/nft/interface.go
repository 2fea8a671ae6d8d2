package nft

import "github.com/nodenet/nodenet/firewalld/internal/model"

// Interface is what firewalld does to its nftables table. firewalld's sync
// loop is its only caller: implementations need not be safe for concurrent
// use (Fake is).
type Interface interface {
	// Apply makes the table hold d, in one transaction, or in none when
	// the table already does.
	Apply(d *model.Datapath) (Result, error)
	// Invalidate makes the next Apply a full one: it reads the table from
	// the kernel again and repairs whatever anyone else changed.
	Invalidate()
	// Delete removes firewalld's table (firewalld cleanup) and nothing
	// else.
	Delete() error
	// Counters reads what the table has dropped so far.
	Counters() (Counters, error)
}

// Config configures a Table. Its log settings are part of the table's
// static layout: a table written with others is recreated (atomically).
type Config struct {
	// NetNS is a file descriptor of the network namespace whose table to
	// program; 0 means the namespace of the process.
	NetNS int
	// LogGroup, when above zero, makes every deny chain log what it drops
	// to this nflog group, at most LogRate packets a second per chain
	// with bursts of LogBurst (0: the kernel's default, 5).
	LogGroup uint16
	LogRate  uint32
	LogBurst uint32
}

// Result reports what an Apply did.
type Result struct {
	// Writes is the number of netlink messages of the transaction (its
	// batch begin and end not counted); 0: nothing was written. A failed
	// transaction wrote nothing (the kernel applies all of it or none).
	Writes int
	// Full: the table was read from the kernel first (the first Apply,
	// the one after an error or after Invalidate).
	Full bool
	// Recreate: the table was missing or its static part (set
	// definitions, fixed chains and rules, the deny chains' rules) was not
	// this layout, so it was deleted and created anew with all its
	// content, in the same transaction; Reason says why.
	Recreate bool
	Reason   string
	// Elements added and deleted (a range is one element; a map element
	// whose value changes is deleted and added).
	ElementsAdded, ElementsDeleted int
	// Deny chains added and deleted (on Recreate: every deny chain).
	ChainsAdded, ChainsDeleted int
}

// Counter is what a rule counted.
type Counter struct {
	Packets, Bytes uint64
}

// GroupKey names a deny chain: a target group in one direction.
type GroupKey struct {
	Direction model.Direction
	Group     model.ID
}

// Counters is what the table dropped, as its counters say. Counts start
// at zero when a chain is created (a group reappearing, the table
// recreated).
type Counters struct {
	// Denied is what each deny chain dropped, per group in use.
	Denied map[GroupKey]Counter
	// Pending is what the pending rules dropped: packets from or to an
	// address of the node's pod CIDRs that firewalld did not know yet.
	Pending Counter
}
