//go:build kernel && vm

package nft

// largeAllowElements is the size of ing_allow in TestKernelLargeTable. In
// the VM it is ten times smaller than on the host: Debian's 6.1 kernel
// inserts into a concatenated interval set (pipapo) in time quadratic in
// the set's size (2k elements 0.4 s, 4k 1 s, 8k 3.6 s under TCG; the host's
// 6.18 is linear), and 100k would take some ten minutes there.
const largeAllowElements = 10000
