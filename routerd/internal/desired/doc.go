// Package desired holds routerd's semantics as pure functions: from Node
// objects, their annotations, routerd's flags and the node's facts to the
// BGP peers the speaker should have, the prefixes it should advertise, and
// the kernel routes and tunnels the learned paths become. Nothing here
// does I/O; bad input becomes a Problem and is skipped.
//
// Annotations (on Node objects):
//
//	nodenet.io/bgp-asn: "64513"              the node's AS (default: --asn)
//	nodenet.io/bgp-rr-server: "198.18.0.10"  the node is a route reflector of
//	                                         this cluster id (IPv4 or number)
//	nodenet.io/bgp-rr-client: "198.18.0.10"  the node is a client of the
//	                                         reflectors of this cluster id
//	nodenet.io/bgp-peers: "address=198.18.9.1 asn=65000 password-secret=tor-md5; address=…"
//	                                         external peers of this node
//
// Peers, per node: with no reflector anywhere, every node peers with every
// other (full mesh, unless --full-mesh=false). A reflector peers with every
// node except the clients of other cluster ids, its own clients marked as
// such; a client peers only with the reflectors of its cluster id; a node
// with neither annotation peers with the reflectors and (full mesh) with
// the other such nodes. Every node computes its side from the same objects,
// so both ends of each session agree.
package desired
