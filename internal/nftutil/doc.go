// Package nftutil holds what the nftables layers of the daemons (proxyd's
// and firewalld's table, each over github.com/google/nftables) do the same
// way: the netlink connection with socket buffers that fit a whole
// transaction, finding and deleting one table and nothing else, element
// lists chunked to fit their netlink attribute, interval set elements as
// the kernel stores them, and comparing rule expressions read back from the
// kernel with the ones written.
//
// It holds no state: every function works on what it is given.
package nftutil
