//go:build kernel && !vm

package nft

// largeAllowElements is the size of ing_allow in TestKernelLargeTable.
const largeAllowElements = 100000
