// Package ipvstest holds tests of kernel features the host kernel lacks
// (IPVS, IPIP, dummy links, SCTP). Its test files carry the build tag vm and
// are meant to run inside the VM of package test/vm:
//
//	go build -o _output/bin/vmexec ./test/cmd/vmexec
//	go test -tags vm -exec "$PWD/_output/bin/vmexec" ./test/vm/ipvstest
//
// They skip, saying why, when not root or when the kernel has no IPVS (run
// without -exec on a host that lacks it). Everything they build lives in
// network namespaces they create, on addresses of 198.18.0.0/15.
package ipvstest
