// Package netns builds throwaway cluster networks out of network
// namespaces on the running kernel, for the kernel and end-to-end tests:
// nodes on a shared underlay, and pods attached to their node by executing
// the real CNI plugins (bridge, host-local, loopback of
// containernetworking/plugins v1.9.1) through libcni, as a kubelet's
// container runtime does.
//
//	topo := netns.New(t, netns.Options{Nodes: 2})   // skips unless root
//	n0, n1 := topo.Node(0), topo.Node(1)
//	n0.AddRoute(n1.PodCIDR, n1.IP)                   // or topo.RouteAllPodCIDRs()
//	n1.AddRoute(n0.PodCIDR, n0.IP)
//	a, b := topo.AddPod(t, n0, "pod-a"), topo.AddPod(t, n1, "pod-b")
//	b.ServeTCP(8080)
//	ans, err := a.DialTCP(ctx, netip.AddrPortFrom(b.IP, 8080))
//	// ans.Name == "pod-b", ans.Source.Addr() == a.IP (no NAT on the way)
//
// Layout (address plan in addresses.go):
//
//	world   namespace with bridge "underlay" (198.18.0.1/24, fixed MAC)
//	nodeI   namespace: eth0 198.18.0.(10+I)/24 (veth, peer "nodeI" on the
//	        underlay bridge), ip_forward=1, kube-bridge (fixed MAC) made
//	        before any pod, CNI config in Node.CNIConfDir
//	pod     namespace: lo (loopback plugin), eth0 from the bridge plugin with
//	        an address of 198.18.(128+I).0/24 from host-local, default route
//	        via kube-bridge (198.18.(128+I).1)
//
// Nothing is created, changed or sent in the caller's own network namespace
// (the host's): every link, address, route and sysctl is inside namespaces
// the topology made, and traffic stays on 198.18.0.0/15 between them.
//
// Each topology keeps its state in a run directory, <state
// dir>/nnt-<run id>/ (state dir: Options.StateDir, $NODENET_NETNS_DIR, or
// /run/nodenet-test), which records the owning process and pins every
// namespace as a bind mount under netns/. To look inside while a test runs:
//
//	nsenter --net=/run/nodenet-test/nnt-<id>/netns/node0 ip addr
//
// Teardown runs from t.Cleanup whether the test passed or not; leftovers of
// a run that could not tear down (killed, crashed) are removed by the next
// Create once their owner process is gone (RemoveLeftovers).
//
// Processes in pods are goroutines of the test: the echo servers and clients
// of package echo (TCP, UDP, SCTP) create their sockets inside the namespace
// (NetNS.Do: a locked OS thread that has joined it) and are served from
// ordinary goroutines. SCTP needs kernel support: without it (this
// project's CI host) the Serve/Dial SCTP calls fail with an error wrapping
// echo.ErrSCTPUnsupported, on which tests skip.
//
// A daemon runs in a node as a process (NetNS.Start), the node's
// hostNetwork pod. When it needs a server that only the test process's own
// namespace reaches (the control plane on the host's loopback), a Relay
// (NetNS.StartRelay) listens at the same address inside the node and
// forwards each connection, dialled from the test process.
//
// Tests using the package need root; by convention they carry the build
// tag "kernel" and run with `go test -tags kernel`.
package netns
