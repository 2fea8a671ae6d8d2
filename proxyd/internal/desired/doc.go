// Package desired computes what proxyd wants in the kernel from the
// Kubernetes objects alone: Services + EndpointSlices + the node → the IPVS
// virtual services and real servers (model.State). It is a pure function, no
// I/O: the Kubernetes Service semantics live here and are tested table by
// table.
//
// The rules, as the Kubernetes documentation and KEPs state them:
//
//   - Every ClusterIP (each family of spec.clusterIPs), every
//     spec.externalIPs address, every status.loadBalancer.ingress IP (unless
//     its ipMode is Proxy: the load balancer then delivers to the nodes, not
//     to the VIP) and, for NodePort and LoadBalancer Services, every nodePort
//     on every node address is one virtual service per Service port.
//     ExternalName and headless Services are not proxied. A Service is
//     proxied only in the IP families of its ClusterIPs: no NodePort on node
//     addresses of another family, and an externalIP or ingress IP of
//     another family is a Problem (kube-proxy does the same, per family).
//   - An EndpointSlice port serves a Service port when name and protocol
//     agree; an endpoint's first address is its address; slices of the other
//     family (and FQDN slices) are ignored; an endpoint in several slices
//     counts once (the readiest copy).
//   - Endpoint conditions: ready defaults to true, serving to ready,
//     terminating to false. Only ready endpoints get new traffic; when none
//     qualifies, serving+terminating ones are used (KEP-1669).
//   - Traffic to a ClusterIP is "internal": internalTrafficPolicy Local
//     limits it to endpoints on this node. Traffic to the other kinds is
//     "external": externalTrafficPolicy Local limits it to endpoints on this
//     node and keeps the client's address (no SNAT).
//   - Topology (trafficDistribution PreferClose/PreferSameZone/PreferSameNode,
//     or the topology-mode annotation Auto): among ready endpoints, prefer the
//     ones hinted for this node (PreferSameNode) or its zone, but only when
//     every ready endpoint carries such hints and some hint names this node
//     or zone; otherwise use all of them. Policy Local wins over topology.
//   - sessionAffinity ClientIP makes the virtual service persistent for
//     sessionAffinityConfig.clientIP.timeoutSeconds (default 10800).
//   - loadBalancerSourceRanges (or the older annotation) restrict who may
//     reach the LoadBalancer VIPs.
//   - externalTrafficPolicy Local on a LoadBalancer Service asks for a
//     health check on healthCheckNodePort answering with the number of local
//     endpoints.
//
// Bad input (a malformed address, a port out of range, an unknown protocol
// or scheduler) is reported as a Problem and skipped; everything else is
// still computed.
package desired
