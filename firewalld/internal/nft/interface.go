package nft

import "github.com/nodenet/nodenet/firewalld/internal/model"

// Interface is what firewalld does to its nftables table. firewalld's sync
// loop is its only caller: implementations need not be safe for concurrent
// use (Fake is).
type Interface interface {
	// Apply makes the table hold d, in one transaction, or in none when
	// the table already does.
	Apply(d *model.Datapath) (Result, error)
	// ApplyDelta makes the table hold d when it holds what the last Apply
	// or ApplyDelta gave it and delta is what changed since: it writes
	// what delta says, at the cost of the change, without looking at the
	// rest of d. Otherwise (never applied, a failed write since,
	// Invalidate) it is Apply(d). Nothing of d or delta is kept: the
	// caller may change them afterwards.
	ApplyDelta(d *model.Datapath, delta *model.Delta) (Result, error)
	// Invalidate makes the next Apply a full one: it reads the table from
	// the kernel again and repairs whatever anyone else changed.
	Invalidate()
	// Delete removes firewalld's table (firewalld cleanup) and nothing
	// else.
	Delete() error
	// Counters reads what the table has dropped so far.
	Counters() (Counters, error)
}

// Config configures a Table. Its log settings are part of every group
// chain's rules: a table written with others has its group chains
// rewritten (in one transaction).
type Config struct {
	// NetNS is a file descriptor of the network namespace whose table to
	// program; 0 means the namespace of the process.
	NetNS int
	// LogGroup, when above zero, makes every group chain log what it drops
	// to this nflog group, at most LogRate packets a second per chain
	// with bursts of LogBurst (0: the kernel's default, 5).
	LogGroup uint16
	LogRate  uint32
	LogBurst uint32
}

// Result reports what an Apply or ApplyDelta did.
type Result struct {
	// Writes is the number of netlink messages of the transaction (its
	// batch begin and end not counted); 0: nothing was written. A failed
	// transaction wrote nothing (the kernel applies all of it or none).
	Writes int
	// Full: the table was read from the kernel first (the first Apply,
	// the one after an error or after Invalidate).
	Full bool
	// Recreate: the table was missing or its static part (fixed sets,
	// fixed chains and rules, the kinds of the other chains and sets) was
	// not this layout, so it was deleted and created anew with all its
	// content, in the same transaction; Reason says why.
	Recreate bool
	Reason   string
	// Elements added and deleted (a range is one element; a verdict map
	// element whose chain changes is deleted and added; the elements of a
	// peer set deleted are not counted).
	ElementsAdded, ElementsDeleted int
	// Group chains added (with their rules), changed (flushed and their
	// rules added again) and deleted (with their rules).
	ChainsAdded, ChainsChanged, ChainsDeleted int
	// Peer sets added and deleted (two per peer: IPv4 and IPv6).
	PeerSetsAdded, PeerSetsDeleted int
}

// Counter is what a rule counted.
type Counter struct {
	Packets, Bytes uint64
}

// Counters is what the table dropped, as its counters say. A group
// chain's count starts at zero when the chain is created or its rules
// are rewritten (a policy change), and when the table is recreated.
type Counters struct {
	// Denied is what each group chain dropped (its last rule), per group
	// in use.
	Denied map[model.GroupKey]Counter
	// Pending is what the pending rules dropped: packets from or to an
	// address of the node's pod CIDRs that firewalld did not know yet.
	Pending Counter
}
