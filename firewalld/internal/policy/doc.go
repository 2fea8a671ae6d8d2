// Package policy compiles Kubernetes NetworkPolicies (networking.k8s.io/v1)
// into firewalld's datapath (model.Datapath) for one node. It is pure: API
// objects in, element sets out, no I/O; the same objects give the same
// result, identity and group numbers included, so a restarted firewalld
// recomputes exactly what its table already holds.
//
// # Semantics (from the NetworkPolicy API documentation)
//
//   - A policy selects the pods of its namespace that its podSelector
//     matches ({} = all). Only this node's pods are policed here; pods on
//     the host's network are never policed, nor count as peers.
//   - policyTypes says which directions a policy isolates; when empty,
//     Ingress always, and Egress when the policy has egress rules.
//   - A pod isolated in a direction gets exactly the union of what the
//     rules of every policy selecting it allow in that direction; with no
//     rules (or only rules that match nothing) it gets nothing. A pod that
//     no policy of a direction selects is unrestricted in that direction.
//     Traffic between two local pods must pass the source's egress and the
//     destination's ingress.
//   - A rule matches a peer and a port. No peers: every address. A peer is
//     a podSelector (pods of the policy's namespace), a namespaceSelector
//     (all pods of the matching namespaces; {} = every namespace), both (the
//     pods matching podSelector in the matching namespaces: AND; two peers
//     are OR), or an ipBlock (cidr minus except; it matches pod addresses
//     too, as the upstream conformance tests expect). No ports: all
//     traffic. A port is a protocol (TCP by default, UDP, SCTP) with a
//     number, a range (port..endPort), no number (the whole protocol) or a
//     name, resolved on the pod that receives the connection: the target
//     for ingress, the destination pod for egress (a destination that is
//     not a pod has no named ports).
//   - Namespaces always carry kubernetes.io/metadata.name=<name>.
//
// # Bad input
//
// Every problem is returned (for events and metrics) and only the broken
// part is dropped, always towards "opens less": a policy whose podSelector
// is invalid selects nothing; an invalid peer or port is dropped from its
// rule, and a rule left with no valid peer or port matches nothing (it
// never widens to "all"); an ipBlock with an invalid except is dropped
// whole. A pod address that does not parse is skipped.
//
// # How it compiles
//
//  1. Pods with addresses become identities: pods of one namespace with the
//     same labels and named ports share one (replicas do).
//  2. Each local pod's selecting policies, per direction, form its target
//     group (with, for ingress, the named ports its rules name resolved on
//     the pod).
//  3. The ipBlocks of the policies that select local pods partition the
//     address space into regions (a sweep over range boundaries), each with
//     the identity of the set of blocks containing it.
//  4. Groups, identities and regions get IDs: a hash of their canonical key,
//     collisions probed in key order (ids.go).
//  5. For each group and each rule: a selector peer yields an Allow element
//     per matching identity, an ipBlock peer one per region inside it, a
//     rule without peers an AnyAllow element; each with the rule's ports
//     resolved. Ranges of one (group, identity) are merged into disjoint
//     ones (the kernel rejects overlapping elements).
//
// model.Datapath.Judge evaluates a packet against the result the way the
// table's rules do; the tests use it to check every rule of the semantics.
package policy
