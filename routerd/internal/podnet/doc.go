// Package podnet is the node's pod network as routerd sets it up: the pod
// bridge in the kernel and the CNI config the container runtime reads to
// attach pods to it.
//
// # The CNI config
//
// ConfList renders one network list, "nodenet", cniVersion 1.0.0 (what
// containerd and CRI-O accept; the reference plugins v1.9.1 speak it):
//
//	bridge     on the pod bridge, the pods' default gateway (isGateway,
//	           isDefaultGateway), hairpin on (a pod reaching itself
//	           through a Service VIP), the node's MTU
//	  ipam     host-local, one range set per pod CIDR (a dual-stack pod
//	           gets one address of each family)
//	portmap    optional (Config.PortMap): hostPort, with SNAT of
//	           connections to a hostPort from the node itself
//
// The loopback plugin is not in the list, although a {"type":"loopback"}
// entry there would be valid (in a chain the plugin brings up lo and
// passes the previous result on): container runtimes bring up a pod's lo
// themselves, as a network of their own run before the node's
// (containerd's go-cni "cni-loopback", CRI-O's ocicni loopback network,
// cri-dockerd likewise). In the list it would run a second time on every
// ADD, and its DEL would take lo down before the runtime's own DEL. The
// node must still have the loopback binary in its CNI bin directory.
//
// host-local's default gateway of a range is its first host address,
// Gateway(cidr): the address EnsureBridge puts on the bridge, and the one
// the bridge plugin expects to find there.
//
// WriteConfList writes the file atomically (a runtime polling the
// directory never reads half a file) and only when its content changes.
// PodCIDRsFromCNI reads the pod CIDRs back from whatever CNI config the
// runtime would use, for nodes whose Node object has no spec.podCIDRs.
//
// # The bridge
//
// EnsureBridge creates the bridge if it is missing and repairs its MTU,
// state, hardware address and gateway addresses; it is idempotent and
// reports whether it changed anything. The hardware address is fixed
// (BridgeMAC, derived from the pod CIDR): a bridge without one takes the
// lowest address of its ports and changes it as pods come and go, which
// leaves stale neighbour entries in the pods (PITFALLS.md). The
// bridge plugin fixes it too, but only when it adds the gateway address
// itself.
//
// There is no DeleteBridge: `routerd cleanup` leaves the bridge and its
// addresses, because running pods are still attached to it and lose their
// network with it; the bridge goes when the node reboots or an operator
// deletes it. Cleanup removes the CNI config (RemoveConfList), so no new
// pod is attached.
package podnet
