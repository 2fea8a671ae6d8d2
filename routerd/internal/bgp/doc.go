// Package bgp is routerd's BGP speaker port: the Router interface, the
// Speaker that implements it over GoBGP v3 embedded as a library, and Fake,
// an in-memory Router for the tests of the packages that use it.
//
// # What the Speaker does
//
// Every node peers with the others over iBGP (a full mesh, or through
// route reflectors: a node whose Global has a ClusterID reflects routes
// between its neighbours marked RRClient and the rest) and, optionally,
// with routers outside the cluster over eBGP (Peer.ASN not the local AS,
// with Multihop as the TTL of a session that is not directly connected).
// Every session carries IPv4 and IPv6 unicast (IPv6 over MP-BGP, also on
// an IPv4 session). The node announces its prefixes (its pod CIDR, service
// IPs) with itself as the next hop and learns the others'.
//
// The configuration calls are declarative. The speaker diffs the
// complete desired set against what it gave GoBGP: a peer whose session
// settings changed is deleted and added again (its session resets), a
// prefix whose next hop changed is announced again (which replaces the
// old path without a withdrawal in between). Bad input never stops the
// rest: an invalid peer or prefix is reported in the returned error and
// skipped.
//
// The learned paths come from GoBGP's event stream (WatchEvent: best
// paths, End-of-RIB markers and session states in one ordered stream),
// kept in a map by prefix: only the best path of each prefix, local paths
// excluded, withdrawals removed. Paths reads that map; it never queries
// GoBGP.
//
// # Graceful restart
//
// With Global.GracefulRestart > 0 every session offers graceful restart
// (RFC 4724) with that restart time (at most 4095 s, the capability's
// limit). What a peer sees depends on how the speaker goes away:
//
//   - Stop (routerd cleanup, tests, a restart with a new Global): GoBGP
//     sends every peer a NOTIFICATION (Cease, peer de-configured) and
//     closes the session. Peers withdraw this node's routes at once,
//     graceful restart or not: the speaker does not offer RFC 8538's
//     notification support, under which a NOTIFICATION would keep them.
//   - routerd exits on SIGTERM, or crashes, without Stop: the kernel
//     closes the TCP connections (FIN or RST) with no NOTIFICATION. A
//     peer that negotiated graceful restart keeps this node's routes,
//     marked stale, for the restart time. A peer that did not
//     negotiate it withdraws them at once.
//   - routerd starts again: the first neighbours configured after Start
//     are told that it restarted (the Restart State bit, and the forwarding-preserved
//     bit of each family, set in its OPEN, since routerd left its kernel
//     routes in place). GoBGP then holds back its UPDATEs until every such
//     peer has sent its End-of-RIB (a peer sends it right after its own
//     table) or until the deferral time (the restart time, at most 30 s)
//     has passed. Then it sends its whole table followed by End-of-RIB. On
//     that End-of-RIB a peer replaces the stale routes by the new ones and
//     withdraws only the stale routes not announced again. A route that is
//     announced again is never withdrawn in between.
//
// For the last point to hold, the prefixes must be announced before the
// peers are configured. Start applies the last advertisements before the
// last peers. A caller that calls SetPeers before SetAdvertisements after a
// restart makes its peers withdraw what the first End-of-RIB did not
// include. The calls should also follow Start closely: between Start and
// SetPeers the listener closes connections from peers it does not know
// yet, and a GoBGP peer keeping our routes takes a closed connection for
// the end of the restart (see below).
//
// A GoBGP that keeps a restarting peer's routes drops them at once when a
// session attempt with that peer fails during the restart (a collision,
// or a connection closed because the other side is still in its idle hold
// time). In GoBGP v3.37.0 every change to idle while the peer is marked
// restarting is handled as if the restart time had run out. So between two
// nodes (Kind NodePeer) only the one with the higher address dials, and
// the other waits. Then the keeper of the routes either dials a peer that
// does not listen yet (refused, no state change) or waits. A node's address
// for this rule is its listen address of the peer's family, or else its
// router ID, and the nodes must know each other by it. Routers outside the
// cluster are always dialled. GoBGP keeps a restarting router's routes
// only as long as its session attempts do not fail.
//
// A peer whose session comes up after the first End-of-RIB exchange gets an
// OPEN without the forwarding-preserved bits (GoBGP clears its restarting
// state for all neighbours at once). A GoBGP peer ignores those bits. A
// router that follows RFC 4724 to the letter (BIRD, FRR) drops the stale
// routes when the session comes back and learns them again right after.
//
// PeerState.EndOfRIB reports whether the peer's End-of-RIB for each
// address family of the session arrived since the session came up. It
// tells routerd that the initial routes are all in, so that it can prune
// the kernel routes left from before a restart. A peer sends End-of-RIB
// only when graceful restart is negotiated (GoBGP never sends it
// otherwise). Without graceful restart, the caller needs another rule,
// such as a timeout.
//
// # GoBGP behaviours worked around
//
//   - Listeners: Go ≥ 1.24 makes net.Listen an MPTCP socket, on which GoBGP
//     cannot set the TCP MD5 key or the TTL (it only logs a warning). A
//     peer that dials in with a password then never comes up. routerd's
//     main package and this package's tests set multipathtcp=0.
//   - DeletePeer leaves the peer's MD5 key on the listening socket. The
//     speaker first updates the peer to no password (GoBGP's update
//     clears the key), then deletes it.
//   - UpdatePeer applies some changes only to the next session (hold
//     time) and ignores others (route-reflector client). A changed peer
//     is deleted and added again instead.
//   - GoBGP's EndOfRibReceived is set without any End-of-RIB while GoBGP
//     restarts and the peer restarted too. The speaker counts End-of-RIB
//     markers from the event stream instead.
//   - ListPeer's advertised count includes the End-of-RIB marker. The
//     speaker subtracts it.
//   - Between nodes only one side dials (see above).
//   - The default connect retry (120 s) is lowered to 5 s, so that a peer
//     that was down when first dialled comes up within seconds.
//   - A stopped GoBGP server is not reused. Its Serve loop never returns,
//     so every stopped (or restarted) speaker leaves one idle goroutine.
//   - The restart time is clamped to 4095 s. GoBGP would let a larger
//     value overflow into the capability's flags.
//   - GoBGP keeps its route selection options in package variables. All
//     speakers of a process share them, and this package uses the
//     defaults.
//
// Not worked around: with real sessions, go test -race reports data races
// inside GoBGP v3.37.0 (a WatchEvent goroutine converts paths that the
// server loop is marking stale, and reads a peer's info while a new session
// writes it: osrg/gobgp#2705, fixed upstream after v3). The kernel tests
// run without -race; the unit tests, which have no sessions, run with it.
//
// What bounds convergence: GoBGP v3 takes an UPDATE in one path at a time
// (the RIB, the best path, the export to each neighbour) and reports each
// best path as an event of its own, a path converted to protobuf. Measured
// in BenchmarkConvergence5k (test/routing), the events of 5,000 prefixes
// come about 8 µs apart, so about 40 ms pass before the last one reaches
// this package, whatever routerd then does with them. (Profiled with
// routerd --profiling and NODENET_BENCH_CPUPROFILE: routerd's own work
// over an announce of 5,000 is under 100 ms of CPU, a third of it the
// kernel's route writes.)
//
// GoBGP's logger is adapted to zap one level quieter: info becomes debug
// and debug becomes a level below debug. Fatal and Panic are logged as
// errors and do not exit.
package bgp
