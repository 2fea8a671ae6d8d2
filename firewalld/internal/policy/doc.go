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
//  1. Pods with addresses get identities: pods of one namespace with the
//     same labels and named ports share one (replicas do). Selectors are
//     matched against identities, not pods.
//  2. Each local pod's selecting policies, per direction, form its target
//     group (with, for ingress, the named ports its rules name resolved on
//     the pod); a group is a chain of rules.
//  3. Each rule of a group's policies becomes rules of its chain: a peer
//     set (the pods a selector peer matches, the ranges of an ipBlock, or
//     any address) with the rule's ports resolved; ranges of one peer set
//     are merged into disjoint ones. Egress named ports resolve on the
//     destination: one peer set per number the name resolves to.
//  4. Groups and peer sets are numbered by a hash of their canonical key,
//     collisions probed in key order (ids.go).
//
// A Compiler does this again in proportion to what changed: informers hand
// out a new object per change, so unchanged pods and policies are the same
// pointers; a pod coming or going changes the addresses of the peer sets
// its identity is in, a new identity joins the sets that match it, and the
// chains are recomputed only for groups whose policies or named ports
// changed. Each result carries the Delta from the previous one.
//
// model.Datapath.Judge evaluates a packet against the result the way the
// table's rules do; the tests use it to check every rule of the semantics.
package policy
