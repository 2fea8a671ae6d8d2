// Package trace answers `proxyd trace`: what proxyd's desired state does
// with the first packet of a connection, and why. It computes nothing of
// its own: the virtual service and its real servers are the ones the last
// sync computed (and programmed), the reasons for each endpoint come from
// desired.Explain (the rules that chose them), and the masquerade and
// source-range decisions from nft.Build's table content, the same the
// kernel's nftables table holds.
package trace
