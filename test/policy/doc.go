// Package policy is the connectivity-matrix suite of Kubernetes
// NetworkPolicy as firewalld enforces it, in the manner of the upstream
// Kubernetes NetworkPolicy tests (namespaces x, y, z with pods a, b, c; for
// each case a set of policies and the full expected reachability matrix),
// over real TCP, UDP and SCTP connections between network namespaces.
//
// Run it as root, after `make controlplane cni-plugins` (both cached):
//
//	go test -tags kernel -v ./test/policy
//
// It needs root for the network namespaces and skips without it, skips when
// the control plane is not built (unless CI=true), and runs on the host's
// kernel; `make test-kernel` runs it.
//
// # The cluster
//
// One fixture serves every case (TestPolicy): a real kube-apiserver, etcd
// and kube-controller-manager (test/controlplane) on the host's loopback,
// and a topology (test/netns) of two nodes and the world namespace:
//
//	world    198.18.0.1     the client outside the cluster (ipBlock cases);
//	                        routes to each node's pod CIDR via the node
//	node0    198.18.0.10    pods x/a x/b y/a y/b z/a z/b in 198.18.128.0/24
//	node1    198.18.0.11    pods x/c y/c z/c in 198.18.129.0/24
//
// so that every pair of namespaces has same-node (bridged) and cross-node
// (routed, static routes) pairs. Nodes, namespaces (labelled ns=<name>) and
// pods (labelled pod=<name>, bound to their node, their status written by
// the test as a kubelet would) are API objects; each pod is also a network
// namespace attached by the real CNI bridge and host-local plugins. Every
// pod, node and the world serve an echo on TCP and UDP ports 80 and 81, and
// SCTP 80 and 81 where the kernel has SCTP (the host's has not: the SCTP
// cells of every matrix are then skipped, and reported as such, never
// counted as passed). Pods declare those ports as container ports named
// serve-<port>-<protocol>, and one more named "http": TCP 80 on pods a and
// b, TCP 81 on pods c, to test named ports resolved per pod.
//
// br_netfilter's bridge-nf-call-iptables and -ip6tables are set to 1 in
// each node, so that packets bridged between pods of one node traverse the
// inet hooks; the fixture first checks they are per network namespace on
// this kernel (since Linux 5.3), so the host's own are never touched.
//
// firewalld runs as in production, one process per node inside the node's
// namespace: `firewalld run --node-name nodeI --kubeconfig <the firewalld
// service account's> --run-dir <its own> --peers=` (routerd is not there:
// firewalld takes its pod CIDR from the Node object). Its kubeconfig names
// https://127.0.0.1:<port>, which a relay in the node (netns.StartRelay)
// forwards to the apiserver on the host's loopback. Its logs go to the test
// output when the test fails.
//
// # Matrices
//
// Rows are sources, columns destinations: the nine pods, the world client,
// and "node", the pod's own node (as a source: the kubelet probing its pod;
// as a destination: the pod reaching its node). Each cell holds one outcome
// per port. Every probe of a matrix runs at once, each with a 1 s deadline
// (a denied TCP connection is a dropped SYN, so a timeout); a round lasts
// about one deadline. After a change the suite polls the whole matrix until
// it equals the expected one, for at most 30 s, flushing the nodes'
// conntrack before each round (firewalld accepts established connections
// by design, and a reused source port must not ride an old entry). Once it
// matches, firewalld must report the change synced with nothing pending,
// and one more round must match. A failure prints the last matrix with the
// mismatches marked, and the mismatched probes' errors.
//
// Expected matrices are written by hand with an Expectation, in the terms
// of the API: a pod is isolated for ingress or egress or not, and isolated
// pods accept or send only what is allowed; both ends must agree. Two
// exceptions hold whatever the policies, as the Kubernetes documentation
// states them: a pod cannot block access to itself (the cell from a pod to
// its own IP, which never leaves the pod's namespace, is always reachable;
// upstream's tests ignore that cell, since plugins differ), and traffic
// between a pod and its own node is always allowed (kubelet probes). Every
// hand-written matrix is also checked against a naive reference evaluator
// of the API, without root (TestCasesAgreeWithReference) and again with the
// real pod IPs before a step runs, so that a matrix that misreads the API
// fails as such, not as a firewalld bug.
//
// # Time
//
// Measured on 2 cores: setup 3-5 s (the control plane ≈2.5-4 s of it,
// firewalld built meanwhile; topology, 9 pods through the API and CNI, and
// firewalld's first sync ≈0.5 s); a round of probes 0.1-0.2 s when every
// cell answers, ≈1 s (the probe deadline) when some are blocked; a step of
// a case 2-4 s (firewalld's 1 s minimum sync interval, then the confirming
// round); a case with its reset 2-10 s. The whole suite ≈190-205 s with a
// firewalld that enforces, ≈3 s (5 s with the build) behind the gate.
//
// # The gate
//
// Until firewalld enforces NetworkPolicy, only the no-policy case runs (all
// reachable): the others skip with "firewalld does not enforce
// NetworkPolicy yet" unless `firewalld status -o json` reports a "policies"
// count on every node (enforcementGate in firewalld_test.go).
package policy
